/**
 * Must-show: the Helm charts. `helm lint` and `helm template` (helm built from the Go module
 * proxy by scripts/install-kube.sh) for charts/trellis-base, charts/trellis and
 * charts/trellis-gateway; `trellis manifest` prints the same objects as charts/trellis; the
 * rendered objects go to a real API server with a server-side dry run and then for real; and the
 * control plane started with the Deployment's own flags (outside the cluster: `--kubernetes`
 * becomes `--kubeconfig`, with a token of the chart's ServiceAccount, so the chart's RBAC is what
 * it runs with) becomes ready and serves.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { Cleanups, nodeBin, repoRoot, waitFor } from './support/processes.ts';
import { applyObject, ensureNamespace, helmBinary, skipUnlessHelm, installCrds, objectUrl, serviceAccountKubeconfig, skipUnlessKube, startKubeCluster, startKubeControl, yamlObjects } from './support/kube-apiserver.ts';
import type { KubeCluster } from './support/kube-apiserver.ts';
import type { KubeObject } from '../src/config/store/kubernetes-rest.ts';

const cleanups = new Cleanups();
after(() => cleanups.run());
const helm = helmBinary();
const skip = skipUnlessKube() || skipUnlessHelm();

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: repoRoot, timeout: 60_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

async function template(chart: string, release: string, namespace: string, sets: string[] = []): Promise<KubeObject[]> {
  const r = await run(helm!, ['template', release, join('charts', chart), '--namespace', namespace, ...sets.flatMap((s) => ['--set', s])]);
  assert.equal(r.code, 0, r.stderr);
  return yamlObjects(r.stdout);
}

const key = (o: KubeObject) => `${o.kind}/${o.metadata?.namespace ?? ''}/${o.metadata?.name}`;

describe('Helm charts: lint, template, trellis manifest, applied to a real API server, control plane as configured', { skip, timeout: 600_000 }, () => {
  let cluster: KubeCluster;

  before(async () => {
    cluster = await startKubeCluster(cleanups);
  });

  test('helm lint passes for every chart', async () => {
    for (const chart of ['trellis-base', 'trellis', 'trellis-gateway']) {
      const r = await run(helm!, ['lint', join('charts', chart)]);
      assert.equal(r.code, 0, `${chart}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  test('trellis manifest --revision R prints the objects charts/trellis renders', async () => {
    for (const [rev, sets] of [['default', []], ['1-3', ['revision=1-3']]] as const) {
      const fromHelm = await template('trellis', 'trellis', 'trellis-system', [...sets]);
      const r = await run(nodeBin, [join(repoRoot, 'bin', 'trellis.js'), 'manifest', '--revision', rev]);
      assert.equal(r.code, 0, r.stderr);
      const fromCli = yamlObjects(r.stdout);
      assert.deepEqual(fromCli.map(key).sort(), fromHelm.map(key).sort(), `revision ${rev}: same objects`);
      const byKey = new Map(fromHelm.map((o) => [key(o), o]));
      for (const o of fromCli) assert.ok(isDeepStrictEqual(o, byKey.get(key(o))), `revision ${rev}: ${key(o)} differs:\n${JSON.stringify(o)}\n${JSON.stringify(byKey.get(key(o)))}`);
    }
  });

  test('rendered objects: server-side dry run, then applied; the control plane with the chart\'s flags and RBAC becomes ready', async (t) => {
    const base = await template('trellis-base', 'trellis-base', 'trellis-system');
    assert.equal(base.filter((o) => o.kind === 'CustomResourceDefinition').length, base.length);
    for (const o of base) await applyObject(cluster.rest, o, { dryRun: true });
    await installCrds(cluster.rest, base);
    assert.deepEqual((await template('trellis-base', 'b', 'x', ['crds.istio=false', 'crds.gatewayAPI=false'])).map((o) => o.metadata?.name), ['workloads.trellis.dev'], 'bring your own CRDs');

    await ensureNamespace(cluster.rest, 'trellis-system');
    await ensureNamespace(cluster.rest, 'edge');
    const cp = await template('trellis', 'trellis', 'trellis-system', ['revision=1-3']);
    const gw = await template('trellis-gateway', 'ingress', 'edge', ['revision=1-3', 'gatewayName=public']);
    for (const o of [...cp, ...gw]) await applyObject(cluster.rest, o, { dryRun: true });
    for (const o of [...cp, ...gw]) await applyObject(cluster.rest, o);
    for (const o of [...cp, ...gw]) await cluster.rest.request('GET', objectUrl(o));
    t.diagnostic(`applied ${base.length} CRDs, ${cp.length} control plane objects, ${gw.length} gateway objects`);

    // A token of the chart's ServiceAccount: the control plane runs with exactly the chart's RBAC.
    const kubeconfigPath = await serviceAccountKubeconfig(cleanups, cluster, 'trellis-system', 'trellis-1-3');

    const deployment = cp.find((o) => o.kind === 'Deployment')!;
    const args = ((deployment.spec as { template: { spec: { containers: { args: string[] }[] } } }).template.spec.containers[0].args).slice(1);
    // Outside the cluster: --kubeconfig instead of the in-cluster service account, free ports,
    // and the webhook reachable at a URL instead of the Service. Every other flag is the chart's.
    const local = args.filter((a) => a !== '--kubernetes');
    const replace = (flag: string, value: string) => {
      const i = local.indexOf(flag);
      assert.ok(i >= 0, `the chart passes ${flag}`);
      local[i + 1] = value;
    };
    replace('--host', '127.0.0.1');
    replace('--xds-port', '0');
    replace('--debug-port', '0');
    replace('--webhook-port', '0');
    const ports = ['--xds-port', '--debug-port', '--ca-tls-port'];
    const control = await startKubeControl(cleanups, { kubeconfigPath }, [...local.filter((a, i) => !ports.includes(a) && !ports.includes(local[i - 1])), '--webhook-url', 'https://127.0.0.1:0']);
    const ready = await waitFor('control plane /ready', async () => (await fetch(`${control.url}/ready`)).status === 200, 60_000, 200);
    assert.ok(ready);
    // It holds the status Lease and registered its injector with a CA bundle, with the chart's RBAC only.
    await waitFor('status Lease held', async () => {
      const lease = await cluster.rest.request<{ spec?: { holderIdentity?: string } }>('GET', '/apis/coordination.k8s.io/v1/namespaces/trellis-system/leases/trellis-status-leader').catch(() => undefined);
      return lease?.spec?.holderIdentity?.endsWith('-1-3') === true;
    }, 30_000, 200);
    const injector = await cluster.rest.request<{ webhooks: { clientConfig: { caBundle?: string } }[] }>('GET', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/trellis-sidecar-injector-1-3');
    assert.ok(injector.webhooks.every((w) => (w.clientConfig.caBundle ?? '').length > 100), 'caBundle filled in');
    assert.doesNotMatch(control.output(), /forbidden/i, 'no RBAC refusals');
  });
});
