/**
 * Specs (flags, help, reference docs) of the verbs that look at config and at a running mesh:
 * `analyze`, `explain`, `proxy-status`, `proxy-config`. Plain data; see spec.ts.
 */
import type { CommandSpec } from './spec.ts';

const control = {
  type: 'string', value: 'URL',
  help: "the control plane's debug address (default: $TRELLIS_CONTROL_URL, else the control plane of the mesh `trellis up` runs (found as for --state-dir), else http://127.0.0.1:15014)",
} as const;
const stateDir = { type: 'string', value: 'DIR', help: 'take the control plane of the mesh run from this state dir' } as const;
const output = { type: 'string', short: 'o', value: 'FMT', default: 'table', help: 'table or json' } as const;

export const analyze = {
  name: 'analyze',
  summary: 'validate mesh config files (schema + cross-resource checks), like istioctl analyze',
  usage: ['analyze [options] PATH...', 'analyze [options] --kubeconfig PATH'],
  description: `Validates mesh configuration (Istio, Gateway API, Kubernetes Service/Secret/Pod/Deployment/..., Trellis Workload YAML or JSON): each document against its schema, then the whole set for cross-resource mistakes (unknown or unexported hosts, subsets, gateways and secrets, hosts a gateway does not admit, conflicting Gateways and VirtualServices, shadowed routes, weights, selectors that match nothing or clash, TLS without verification, mTLS conflicts...), the checks of istioctl analyze that apply to Trellis. Codes: docs/diagnostics.md.

PATH is a file, a directory (read recursively: *.yaml, *.yml, *.json) or - for stdin. All paths are analyzed together, as one configuration.

With a mesh running (\`trellis up\` in --state-dir, or sidecars named by --admin), the plaintext traffic its sidecars saw is checked against the config too: STRICT over a port that still gets plaintext is MTLS_PLAINTEXT_CLIENTS.`,
  options: {
    output: { type: 'string', short: 'o', value: 'FORMAT', default: 'text', help: 'text or json (json always lists every diagnostic)' },
    verbose: { type: 'boolean', short: 'v', default: false, help: 'text: also print info diagnostics (e.g. kinds Trellis skips)' },
    'domain-suffix': { type: 'string', value: 'S', default: 'cluster.local', help: 'cluster DNS suffix for short host names' },
    'mesh-config': { type: 'string', value: 'FILE', help: 'Istio MeshConfig (YAML, or the istio ConfigMap holding it under data.mesh): root namespace, ingress gateway selector, extension providers; without it, the istio ConfigMap of istio-system if given' },
    kubeconfig: { type: 'string', value: 'PATH', help: 'analyze what a Kubernetes cluster holds instead of PATHs, and warn about namespaces labelled for a revision or tag that does not exist' },
    'state-dir': { type: 'string', value: 'DIR', help: "the running `trellis up` mesh whose sidecars' counters to read (default: $TRELLIS_STATE_DIR, else .trellis)" },
    admin: { type: 'string', multiple: true, value: 'HOST:PORT', help: "read this sidecar's counters instead (repeatable)" },
    minutes: { type: 'string', value: 'N', default: '10', help: 'how far back plaintext traffic counts (1..15)' },
  },
  allowPositionals: true,
  exitStatus: '0 no errors (warnings allowed), 1 errors found, 2 usage error (no PATH, unknown option, a PATH that does not exist).',
} as const satisfies CommandSpec;

export const explain = {
  name: 'explain',
  summary: 'describe a resource kind and its fields (e.g. trellis explain workload.spec.ports)',
  usage: ['explain KIND[.FIELD]...'],
  description: "Prints the fields of a resource kind Trellis reads, from the same schema that validates it: type, default, allowed values and, where Trellis documents the kind (Workload), what each field does, like `kubectl explain`. KIND is a kind name in any case (workload, VirtualService, httproute), optionally followed by a field path (workload.spec.ports.protocol). `trellis explain` alone lists the kinds.",
  options: {
    recursive: { type: 'boolean', short: 'r', help: 'print every nested field, not only the first level' },
    'api-version': { type: 'string', value: 'GROUP/VERSION', help: 'choose between kinds of the same name (Gateway: networking.istio.io/v1 or gateway.networking.k8s.io/v1)' },
  },
  allowPositionals: true,
  examples: [
    { command: 'explain workload', note: 'the fields of a Workload' },
    { command: 'explain workload.spec --recursive', note: 'everything under spec' },
  ],
  exitStatus: '0 printed, 2 unknown kind or field.',
} as const satisfies CommandSpec;

export const mtls = {
  name: 'mtls',
  summary: 'per workload port: the mTLS mode in force and which clients still send plaintext',
  usage: ['mtls [--state-dir DIR] [--admin HOST:PORT]... [--minutes N] [-o table|json]'],
  description: "Shows, per workload and inbound port, the mTLS mode in force (STRICT, PERMISSIVE, DISABLE, from the listeners the sidecar runs) and which clients sent plaintext in the last N minutes, from each sidecar's own counters: when a port's plaintext column stays at 0, STRICT is safe for it. With no --admin, the sidecars of the mesh `trellis up` runs.",
  options: {
    'state-dir': { type: 'string', value: 'DIR', help: 'the mesh whose sidecars to ask (default: found as `trellis status` finds it)' },
    admin: { type: 'string', multiple: true, value: 'HOST:PORT', help: "a sidecar's admin address, instead of the mesh's sidecars" },
    minutes: { type: 'string', value: 'N', default: '10', help: 'how far back to count (1..15: the proxies keep 15)' },
    output,
  },
  allowPositionals: false,
  exitStatus: '0 shown, 1 no mesh or no sidecar answered, 2 usage error.',
} as const satisfies CommandSpec;

export const proxyStatus = {
  name: 'proxy-status',
  summary: "show each connected proxy's xDS sync state (SYNCED / STALE / NACKED)",
  usage: ['proxy-status [--control URL]... [--state-dir DIR] [-o table|json]'],
  description: 'Shows every proxy connected to the control plane and, per xDS type, whether it runs the config last sent (SYNCED), has not acknowledged it yet (STALE), rejected it (NACKED, with the error below the table) or was never sent any (NOT SENT), like `istioctl proxy-status`. With a mesh run by `trellis up` it needs no flags, from any directory.',
  options: { control: { ...control, multiple: true, help: `${control.help}; repeat it for several revisions` }, 'state-dir': stateDir, output },
  allowPositionals: false,
  environment: [{ name: 'TRELLIS_CONTROL_URL', help: 'default for --control' }, { name: 'TRELLIS_STATE_DIR', help: 'default for --state-dir' }],
  exitStatus: '0 shown, 1 the control plane cannot be reached, 2 usage error.',
} as const satisfies CommandSpec;

export const proxyConfig = {
  name: 'proxy-config',
  summary: 'show the listeners, routes, clusters or endpoints sent to one proxy',
  usage: ['proxy-config listeners|routes|clusters|endpoints|all PROXY [--control URL | --state-dir DIR] [-o table|json]'],
  description: "Shows the xDS configuration the control plane sent to one proxy, as tables with the columns `istioctl proxy-config` shows (routes name the VirtualService and clusters the DestinationRule they come from), or all of it as JSON. PROXY is the replica name `trellis status` prints (web-api-v1-x7k2q), NAME.NAMESPACE, a node id (`trellis proxy-status`), or a unique prefix of any of these.",
  options: { control, 'state-dir': stateDir, output },
  allowPositionals: true,
  examples: [
    { command: 'proxy-config routes web-api-v1', note: "web-api's sidecar's routes (a unique prefix of its replica name is enough)" },
    { command: 'proxy-config clusters istio-ingressgateway -o json', note: "the gateway's clusters, as sent" },
  ],
  environment: [{ name: 'TRELLIS_CONTROL_URL', help: 'default for --control' }, { name: 'TRELLIS_STATE_DIR', help: 'default for --state-dir' }],
  exitStatus: '0 shown, 1 no such proxy or the control plane cannot be reached, 2 usage error.',
} as const satisfies CommandSpec;
