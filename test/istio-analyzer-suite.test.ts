/**
 * `trellis analyze` against Istio's own analyzer test suite (../shared/istio-analyzer: the input
 * files and, in cases.json, the messages `istioctl analyze` must report on them).
 *
 * Each case runs through the pipeline the CLI uses (load, then analyzeConfig) over all its input
 * files together. An expected Istio message is
 * - matched when a Trellis finding with an equivalent code (ISTIO_TO_TRELLIS) names the same
 *   resource (kind, namespace, name; Istio omits the namespace when the YAML does, which Trellis
 *   reads as `default`); each finding matches at most one expected message;
 * - out of scope when its type (or type and resource kind) is listed in OUT_OF_SCOPE with the
 *   reason; never counted as passed;
 * - missed otherwise.
 * A Trellis finding (any severity; the loader's IGNORED_KIND info excepted) that matches no
 * expected message is a false alarm, unless REAL_PROBLEMS lists it with the reason it is a real
 * problem that Istio's single-analyzer run does not look for.
 *
 * The counts per message type are committed in istio-analyzer-suite.expected.json; any change
 * fails the test (a regression, or an improvement to record with TRELLIS_UPDATE_GOLDEN=1).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { analyzePaths, meshConfigOption } from '../src/cli/analyze.ts';
import type { Diagnostic } from '../src/config/resource.ts';

const root = new URL('..', import.meta.url).pathname;
const suiteDir = join(root, '../shared/istio-analyzer');
const expectedFile = join(root, 'test/istio-analyzer-suite.expected.json');

/** Istio message type -> the Trellis codes that report the same problem. */
const ISTIO_TO_TRELLIS: Readonly<Record<string, readonly string[]>> = {
  ReferencedResourceNotFound: ['VS_HOST_NOT_FOUND', 'GATEWAY_NOT_FOUND', 'SECRET_NOT_FOUND', 'SELECTOR_NO_MATCH', 'DESTINATION_PORT_NOT_FOUND', 'NAMESPACE_NOT_FOUND'],
  VirtualServiceHostNotFoundInGateway: ['VS_HOST_NOT_IN_GATEWAY'],
  ConflictingGateways: ['GATEWAY_CONFLICT'],
  ConflictingMeshGatewayVirtualServiceHosts: ['VS_HOST_CONFLICT'],
  ServiceEntryAddressesRequired: ['SE_ADDRESSES_REQUIRED'],
  GatewayPortNotDefinedOnService: ['GATEWAY_PORT_NOT_EXPOSED'],
  ConflictingSidecarWorkloadSelectors: ['SELECTOR_CONFLICT'],
  ConflictingTelemetryWorkloadSelectors: ['SELECTOR_CONFLICT'],
  MultipleSidecarsWithoutWorkloadSelectors: ['NAMESPACE_DEFAULT_CONFLICT'],
  NoServerCertificateVerificationDestinationLevel: ['DR_TLS_NO_CA'],
  NoServerCertificateVerificationPortLevel: ['DR_TLS_NO_CA'],
  GatewayDuplicateCertificate: ['GATEWAY_DUPLICATE_CERTIFICATE'],
  IneffectiveSelector: ['SELECTOR_INEFFECTIVE'],
  PortNameIsNotUnderNamingConvention: ['PORT_PROTOCOL_UNKNOWN'],
  DeploymentAssociatedToMultipleServices: ['WORKLOAD_PORT_CONFLICT'],
  DeploymentConflictingPorts: ['WORKLOAD_PORT_CONFLICT'],
  DestinationRuleSubsetNotSelectPods: ['SUBSET_NO_WORKLOADS'],
  UnknownDestinationRuleHost: ['DR_HOST_NOT_FOUND'],
  VirtualServiceDestinationPortSelectorRequired: ['DESTINATION_PORT_REQUIRED'],
  ReferencedInternalGateway: ['GATEWAY_NOT_FOUND'],
  InvalidApplicationUID: ['WORKLOAD_PROXY_UID'],
  Deprecated: ['DEPRECATED'],
};

/** Message types (or a type for one resource kind) that do not apply to Trellis, and why. */
const OUT_OF_SCOPE: readonly { readonly msg: string; readonly kind?: string; readonly why: string }[] = [
  ...['UnknownAnnotation', 'InvalidAnnotation', 'MisplacedAnnotation', 'DeprecatedAnnotation', 'AlphaAnnotation'].map((msg) => ({
    msg,
    why: "judged against Istio's annotation catalogue (which istiod/injector annotation goes on which kind, at which maturity); Trellis reads only networking.istio.io/exportTo and does not implement the others",
  })),
  ...['InvalidExternalControlPlaneConfig', 'InvalidWebhook'].map((msg) => ({
    msg,
    why: "checks istiod's own MutatingWebhookConfiguration/ValidatingWebhookConfiguration objects; Trellis installs and checks its own webhook (issue 15)",
  })),
  ...['NamespaceMultipleInjectionLabels', 'NamespaceInjectionEnabledByDefault', 'PodMissingProxy', 'PodsIstioProxyImageMismatchInNamespace', 'ImageAutoWithoutInjectionWarning', 'ImageAutoWithoutInjectionError'].map((msg) => ({
    msg,
    why: "sidecar injection state of live Pods against istio-sidecar-injector ConfigMaps and revisions: what a cluster's injector did, not mesh config; Trellis's injector is issue 15's",
  })),
  ...['EnvoyFilterUsesRelativeOperation', 'EnvoyFilterUsesRelativeOperationWithProxyVersion', 'EnvoyFilterUsesRemoveOperationIncorrectly', 'EnvoyFilterUsesReplaceOperationIncorrectly'].map((msg) => ({
    msg,
    why: 'EnvoyFilter is not supported by Trellis (skipped as IGNORED_KIND): there is no patch order to check',
  })),
  { msg: 'UnknownMeshNetworksServiceRegistry', why: 'multi-cluster MeshNetworks: Trellis runs one cluster' },
  { msg: 'IneffectivePolicy', why: 'ambient mode (istio.io/dataplane-mode: ambient): Trellis has sidecars and gateways only' },
  { msg: 'IneffectiveSelector', kind: 'WasmPlugin', why: 'WasmPlugin is not supported by Trellis (skipped as IGNORED_KIND)' },
];

/**
 * Trellis findings on the cases that are real problems Istio's single-analyzer run does not
 * look for (each would be reported by another Istio analyzer, or is refused by Kubernetes),
 * keyed by the case's first input file.
 */
const REAL_PROBLEMS: readonly RealProblem[] = [
  {
    file: 'virtualservice_conflictingmeshgatewayhosts_with_exportto.yaml', code: 'VS_HOST_NOT_FOUND',
    resources: ['foo/productpage', 'bar/productpage', 'foo/productpage-b', 'bar/productpage-b', 'foo/productpage-c', 'bar/productpage-c', 'foo/productpage-d', 'bar/productpage-d'].map((n) => `VirtualService ${n}`),
    why: 'routes to `productpage`, and the input has no Service productpage in foo or bar (IST0101 of virtualservice.DestinationHostAnalyzer)',
  },
  {
    file: 'virtualservice_destinationhosts.yaml', code: 'BAD_ENUM', resources: ['Service default/reviews-2port'],
    why: 'Kubernetes refuses Service port protocol HTTP / HTTPS (only TCP, UDP, SCTP); the protocol belongs in the port name or appProtocol',
  },
  {
    file: 'virtualservice_destinationhosts.yaml', code: 'SUBSET_NOT_FOUND',
    resources: ['reviews', 'reviews-bogushost', 'reviews-fqdn', 'reviews-mirror', 'reviews-mirror-bogushost', 'reviews-bogusport', 'reviews-2port-missing', 'reviews-2port-present'].map((n) => `VirtualService default/${n}`),
    why: 'routes to subset v1 and no DestinationRule defines it (IST0101 of virtualservice.DestinationRuleAnalyzer)',
  },
  {
    file: 'virtualservice_destinationhosts.yaml', code: 'WEIGHTS_NOT_100', resources: ['VirtualService default/reviews-bogushost'],
    why: 'two route entries, one of them an empty `{}` without destination, and no weights',
  },
  {
    file: 'virtualservice_destinationhosts.yaml', code: 'VS_HOST_CONFLICT', resources: ['VirtualService hello/hello', 'VirtualService hello/hello-export-to-bogus'],
    why: "both claim hello.hello.svc.cluster.local for the mesh and both are visible in namespace bogus (Istio's ConflictingMeshGatewayHostsAnalyzer compares a scoped VirtualService with the exported-to-all ones)",
  },
  {
    file: 'virtualservice_internal_gateway_ref.yaml', code: 'VS_HOST_NOT_FOUND', resources: ['VirtualService default/httpbin'],
    why: 'routes to `httpbin`, and the input has no Service httpbin (IST0101 of virtualservice.DestinationHostAnalyzer)',
  },
  {
    file: 'deployment-multi-service.yaml', code: 'BAD_ENUM',
    resources: ['details-http-v1', 'conflicting-ports-2', 'reviews-http-9080', 'reviews-http-9090', 'productpage-http-v1'].map((n) => `Service bookinfo/${n}`),
    why: 'Kubernetes refuses Service port protocol HTTP (only TCP, UDP, SCTP)',
  },
  ...['destinationrule-simple-destination.yaml', 'destinationrule-simple-destination-credentialname.yaml', 'destinationrule-simple-destination-credentialname-selector.yaml', 'destinationrule-simple-port-credentialname-selector.yaml'].map((file) => ({
    file, code: 'DR_HOST_NOT_FOUND', resources: ['DestinationRule default/db-tls'],
    why: 'host mydbserver.prod.svc.cluster.local names no Service or ServiceEntry (IST0174 UnknownDestinationRuleHost)',
  })),
  ...['destinationrule-mutual-destination.yaml', 'destinationrule-mutual-port.yaml', 'destinationrule-compound-mutual-simple.yaml', 'destinationrule-with-ca.yaml'].map((file) => ({
    file, code: 'DR_HOST_NOT_FOUND', resources: ['DestinationRule default/db-mtls'],
    why: 'host mydbserver.prod.svc.cluster.local names no Service or ServiceEntry (IST0174 UnknownDestinationRuleHost)',
  })),
  ...['virtualservice_host_not_found_gateway.yaml', 'virtualservice_host_not_found_gateway_beta.yaml'].flatMap((file) => [
    {
      file, code: 'VS_HOST_NOT_FOUND',
      resources: ['01-test-01', '02-test-01', '01-test-02', '02-test-02', '01-test-03', '02-test-03', '01-test-04', '02-test-04', '03-test-04'].map((n) => `VirtualService default/testing-service-${n}`),
      why: 'routes to `ratings`, and the input has no Service ratings (IST0101 of virtualservice.DestinationHostAnalyzer)',
    },
    {
      file, code: 'VS_HOST_CONFLICT', resources: ['VirtualService default/testing-service-01-test-03', 'VirtualService default/testing-service-02-test-03'],
      where: 'on gateway istio-system/testing-gateway-01-test-03 ',
      why: 'both bind user.api.testing-03.com, admitted by *.api.testing-03.com, to the same gateway with the same match: one of the two route lists is never used',
    },
  ]),
  {
    file: 'virtualservice_host_not_found_gateway_with_ns_prefix_beta.yaml', code: 'VS_HOST_NOT_FOUND',
    resources: ['01-test-01', '01-test-02', '01-test-03', '01-test-04'].flatMap((n) => [`VirtualService istio-system/testing-service-${n}`, `VirtualService default/testing-service-${n}`]),
    why: 'routes to `ratings`, and the input has no Service ratings (IST0101 of virtualservice.DestinationHostAnalyzer)',
  },
  ...['2', '3', '4'].map((g) => ({
    file: 'virtualservice_host_not_found_gateway_with_ns_prefix_beta.yaml', code: 'VS_HOST_CONFLICT',
    resources: [`VirtualService istio-system/testing-service-01-test-0${g}`, `VirtualService default/testing-service-01-test-0${g}`],
    where: `on gateway istio-system/testing-gateway-${g} `,
    why: 'both bind testing-01.com, which the server admits from any namespace, to the same gateway with the same match: one of the two route lists is never used',
  })),
  {
    file: 'gateway-secrets.yaml', code: 'BAD_NAME', resources: ['Gateway default/defaultgateway-bogusCredentialName'],
    why: 'Kubernetes refuses upper-case letters in a resource name (DNS-1123 subdomain)',
  },
  {
    file: 'gateway-secrets.yaml', code: 'GATEWAY_CONFLICT', resources: ['Gateway default/defaultgateway-noerrors', 'Gateway default/defaultgateway-nocredential'],
    why: "both put an HTTPS server for httpbin.example.com on port 443 of the ingress gateway: two TLS filter chains with the same match, which Envoy rejects (IST0145 of Istio's ConflictingGatewayAnalyzer)",
  },
  {
    file: 'gateway-secrets.yaml', code: 'SECRET_INVALID', resources: ['Gateway default/defaultgateway-noerrors'],
    why: "Secret httpbin-credential's tls.key is not the key of its tls.crt (their public keys differ; openssl agrees): no TLS handshake can succeed (IST0161 InvalidGatewayCredential of Istio's SecretAnalyzer)",
  },
  {
    file: 'gateway-duplicate-certificate.yaml', code: 'SECRET_INVALID',
    resources: ['istio-system/gateway-01-test-01', 'istio-system/gateway-02-test-01', 'istio-system/gateway-01-test-02', 'istio-system/gateway-02-test-02',
      'default/gateway-01-test-03', 'istio-system/gateway-02-test-03', 'istio-system/gateway-01-test-04', 'istio-system/gateway-02-test-04',
      'istio-system/gateway-01-test-05', 'istio-system/gateway-02-test-05', 'default/gateway-01-test-06', 'istio-system/gateway-02-test-06'].map((n) => `Gateway ${n}`),
    why: "the Secrets hold `cert: hush hush hush`, not a certificate (IST0161 InvalidGatewayCredential of Istio's SecretAnalyzer)",
  },
  {
    file: 'virtualservice_destinationhosts.yaml', code: 'VS_HOST_NOT_FOUND', resources: ['VirtualService default/reviews-2port-missing', 'VirtualService default/reviews-2port-present'],
    why: 'Service reviews-2port is refused (port protocol HTTP/HTTPS, BAD_ENUM), so the host they route to does not exist',
  },
  {
    file: 'serviceentry-address-allocated.yaml', code: 'SE_ADDRESSES_REQUIRED', resources: ['ServiceEntry default/address-allocated'],
    why: "the only address is Istio's auto-allocated `status.addresses`; Trellis allocates none for ServiceEntries and reads no status, so port 22 becomes the catch-all TCP chain",
  },
];

interface RealProblem {
  readonly file: string;
  readonly code: string;
  readonly resources: readonly string[];
  /** A part of the message that singles out the finding when a resource has several of one code. */
  readonly where?: string;
  readonly why: string;
}
interface ExpectedMessage { readonly msg: string; readonly resource: string; readonly code: string }
interface Case {
  readonly name: string;
  readonly inputFiles: readonly string[];
  readonly meshConfigFile: string | null;
  readonly meshNetworksFile: string | null;
  readonly analyzer: string;
  readonly expected: readonly ExpectedMessage[];
}

interface TypeCounts { matched: number; missed: number; outOfScope: number }
interface SuiteReport {
  readonly perType: Record<string, TypeCounts>;
  readonly falseAlarms: Record<string, number>;
  readonly realProblems: Record<string, number>;
  readonly totals: { inScope: number; matched: number; missed: number; outOfScope: number; falseAlarms: number; realProblems: number };
}

/** `Kind ns/name` of a finding, or undefined for file-level findings. */
function resourceOf(d: Diagnostic): string | undefined {
  return d.resource === undefined ? undefined : `${d.resource.kind} ${d.resource.namespace}/${d.resource.name}`;
}

/** Istio's `Kind name` / `Kind ns/name` in Trellis's spelling (a missing namespace is `default`). */
function normalizeExpected(resource: string): string {
  const sp = resource.indexOf(' ');
  const kind = resource.slice(0, sp);
  const rest = resource.slice(sp + 1);
  return rest.includes('/') ? `${kind} ${rest}` : `${kind} default/${rest}`;
}

function outOfScope(e: ExpectedMessage): boolean {
  const kind = e.resource.slice(0, e.resource.indexOf(' '));
  return OUT_OF_SCOPE.some((o) => o.msg === e.msg && (o.kind === undefined || o.kind === kind));
}

/** The case through `trellis analyze`'s own path: load, schema and semantic checks, with `--mesh-config` when the case has one. */
async function analyzeCase(c: Case): Promise<Diagnostic[]> {
  const mesh = c.meshConfigFile === null ? undefined : meshConfigOption(join(suiteDir, c.meshConfigFile));
  const { diagnostics } = await analyzePaths(c.inputFiles.map((f) => join(suiteDir, f)), mesh === undefined ? {} : { mesh });
  return diagnostics.filter((d) => d.code !== 'IGNORED_KIND');
}

async function runSuite(cases: readonly Case[]): Promise<{ report: SuiteReport; details: string[]; unusedRealProblems: RealProblem[] }> {
  const usedReal = new Set<RealProblem>();
  const perType: Record<string, TypeCounts> = {};
  const falseAlarms: Record<string, number> = {};
  const realProblems: Record<string, number> = {};
  const details: string[] = [];
  for (const c of cases) {
    const findings = await analyzeCase(c);
    const used = new Set<number>();
    for (const e of c.expected) {
      const counts = (perType[e.msg] ??= { matched: 0, missed: 0, outOfScope: 0 });
      if (outOfScope(e)) {
        counts.outOfScope++;
        continue;
      }
      const codes = ISTIO_TO_TRELLIS[e.msg] ?? [];
      const want = normalizeExpected(e.resource);
      const hit = findings.findIndex((d, i) => !used.has(i) && codes.includes(d.code) && resourceOf(d) === want);
      if (hit >= 0) {
        used.add(hit);
        counts.matched++;
      } else {
        counts.missed++;
        details.push(`missed   ${c.name}: ${e.msg} ${e.resource}`);
      }
    }
    const file = basename(c.inputFiles[0]);
    findings.forEach((d, i) => {
      if (used.has(i)) return;
      const res = resourceOf(d);
      const real = REAL_PROBLEMS.find((p) => p.file === file && p.code === d.code && res !== undefined && p.resources.includes(res) && (p.where === undefined || d.message.includes(p.where)));
      if (real !== undefined) usedReal.add(real);
      const tally = real ? realProblems : falseAlarms;
      tally[d.code] = (tally[d.code] ?? 0) + 1;
      details.push(`${real ? 'real    ' : 'FALSE   '} ${c.name} [${file}]: ${d.severity} ${d.code} ${res ?? d.file ?? ''}: ${d.message}`);
    });
  }
  const sum = (f: (t: TypeCounts) => number): number => Object.values(perType).reduce((a, t) => a + f(t), 0);
  const matched = sum((t) => t.matched);
  const missed = sum((t) => t.missed);
  const count = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);
  return {
    report: {
      perType: sortKeys(perType),
      falseAlarms: sortKeys(falseAlarms),
      realProblems: sortKeys(realProblems),
      totals: { inScope: matched + missed, matched, missed, outOfScope: sum((t) => t.outOfScope), falseAlarms: count(falseAlarms), realProblems: count(realProblems) },
    },
    details,
    unusedRealProblems: REAL_PROBLEMS.filter((p) => !usedReal.has(p)),
  };
}

function sortKeys<T>(r: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function table(r: SuiteReport): string {
  const rows = Object.entries(r.perType).map(([t, c]) => `  ${t.padEnd(48)} ${String(c.matched).padStart(7)} ${String(c.missed).padStart(6)} ${String(c.outOfScope).padStart(12)}`);
  const fa = Object.entries(r.falseAlarms).map(([code, n]) => `  ${code.padEnd(48)} ${String(n).padStart(7)}`);
  const t = r.totals;
  return [
    `  ${'Istio message type'.padEnd(48)} matched missed out-of-scope`,
    ...rows,
    `  in scope ${t.inScope}: matched ${t.matched} (${t.inScope === 0 ? 0 : Math.round((1000 * t.matched) / t.inScope) / 10}%), missed ${t.missed}; out of scope ${t.outOfScope}`,
    `  false alarms ${t.falseAlarms}${fa.length > 0 ? ':' : ''}`,
    ...fa,
    `  Trellis-only findings that are real problems: ${t.realProblems}`,
  ].join('\n');
}

const skip = existsSync(join(suiteDir, 'cases.json')) ? false : `no ${suiteDir}`;

test('every Istio message type in the suite is mapped to Trellis codes or listed out of scope', { skip }, () => {
  const cases = JSON.parse(readFileSync(join(suiteDir, 'cases.json'), 'utf8')) as Case[];
  const types = new Set(cases.flatMap((c) => c.expected.map((e) => e.msg)));
  const unlisted = [...types].filter((t) => ISTIO_TO_TRELLIS[t] === undefined && !OUT_OF_SCOPE.some((o) => o.msg === t && o.kind === undefined));
  assert.deepEqual(unlisted, []);
});

test("Istio's analyzer suite: matched / missed / out-of-scope / false alarms per message type", { skip }, async (t) => {
  const cases = JSON.parse(readFileSync(join(suiteDir, 'cases.json'), 'utf8')) as Case[];
  const { report, details, unusedRealProblems } = await runSuite(cases);
  t.diagnostic(`\n${table(report)}`);
  assert.deepEqual(unusedRealProblems, [], 'REAL_PROBLEMS entries that no finding uses any more: remove them');
  if (process.env.TRELLIS_UPDATE_GOLDEN === '1') {
    writeFileSync(expectedFile, JSON.stringify(report, null, 1) + '\n');
    t.diagnostic(details.join('\n'));
    return;
  }
  const expected = JSON.parse(readFileSync(expectedFile, 'utf8')) as SuiteReport;
  assert.deepEqual(report, expected,
    `the suite's counts changed (regression, or an improvement to record with TRELLIS_UPDATE_GOLDEN=1):\n${table(report)}\n${details.join('\n')}`);
});
