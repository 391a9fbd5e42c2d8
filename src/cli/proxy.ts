/**
 * `trellis proxy`: runs the data plane (sidecar or gateway) driven by xDS from the control plane.
 * Identity comes from flags (or a bootstrap file) and is sent as the xDS node, in Istio's
 * conventions: node id `<kind>~<ip>~<workload>.<ns>~<ns>.svc.cluster.local` and metadata NAMESPACE,
 * LABELS, SERVICE_ACCOUNT, WORKLOAD_NAME, INSTANCE_IPS, plus `--metadata` JSON for the rest
 * (explicit-capture port maps, see src/control/translate/listeners-sidecar.ts).
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { pino } from 'pino';
import { parse as parseYaml } from 'yaml';
import { parseCli, UsageError } from './args.ts';
import type { Verb } from './main.ts';
import cluster from 'node:cluster';
import { startProxy, telemetryOptions } from '../proxy/proxy.ts';
import { runWorker } from '../proxy/workers.ts';
import type { NodeJson } from '../xds/ads-wire.ts';
import { describeError } from '../errors.ts';
import { parseKeyAlgorithm } from '../pki/keys.ts';
import { caRootsFromFile, tokenFromFile } from '../proxy/tls/identity-agent.ts';
import { parseAppProbes } from '../proxy/admin/app-probes.ts';
import type { AppProbe } from '../proxy/admin/app-probes.ts';

const help = `usage: trellis proxy --xds HOST:PORT [options]

  --xds HOST:PORT           control plane ADS address (default 127.0.0.1:15010)
  --kind sidecar|router     sidecar next to a workload, or router (gateway) (default sidecar)
  --node-id ID              xDS node id (default: Istio-style from kind, namespace, workload)
  --namespace NS            workload namespace (default default)
  --workload NAME           workload (pod) name (default: <hostname>-<pid>)
  --labels k=v,k2=v2        workload labels (gateways: e.g. istio=ingressgateway)
  --service-account SA      service account (default default)
  --ip ADDR                 instance IP (default 127.0.0.1)
  --metadata JSON           extra node metadata (e.g. {"TRELLIS_HTTP_PROXY_PORT":"15080"})
  --bootstrap FILE          YAML/JSON with {xds, node: {id, metadata}, admin: {port}}; flags win
  --admin-port N            admin API (default 15000; 0 = any, -1 = off)
  --admin-address ADDR      address of the admin, health and Prometheus servers (default 127.0.0.1;
                            transparent capture: 0.0.0.0 inside the workload's network namespace)
  --health-port N           /healthz/ready (default 15021)
  --prometheus-port N       /stats/prometheus (default 15090)
  --status-port N           app probes (/app-health/...), readiness and metrics, like Istio's 15020
                            (default -1 = off; on when --app-probes is given: 15020)
  --app-probes JSON         the pod's original HTTP probes by /app-health path (set by injection)
  --drain-timeout DURATION  how long in-flight requests may finish on shutdown (default 5s)
  --concurrency N           worker processes sharing the listeners (default 2, like an Istio
                            sidecar; 1 serves in the main process)
                            (each process runs with node --max-semi-space-size=16, a 32 MB
                            young generation; set your own through NODE_OPTIONS)
  --ready-file PATH         JSON with the bound ports, written once servers listen
  --log-level LEVEL         debug|info|warn|error (default info)
  --ca-token-file FILE      workload token for the mesh CA (or env TRELLIS_CA_TOKEN): the proxy gets its identity
                            (spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>) from
                            the CA and serves and uses mTLS (trellis up passes one per replica)
  --ca-address HOST:PORT    the CA (default: the --xds address)
  --ca-root-cert FILE       reach the CA over TLS, verified with these PEM roots (re-read at each
                            request; Kubernetes: the mounted istio-ca-root-cert ConfigMap)
  --trust-domain TD         SPIFFE trust domain (default cluster.local)
  --cert-ttl DURATION       workload certificate lifetime to ask for (default: the CA's, 24h)
  --key-algorithm ALG       ECDSA_P256 (default) or RSA_2048
`;

function parsePort(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < -1 || n > 65535) throw new UsageError(`proxy: --${name} must be -1..65535, got '${v}'`);
  return n;
}

/** Parses `5s`, `500ms`, `1m` into milliseconds. */
export function parseDurationMs(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim());
  if (!m) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  return Number(m[1]) * unit;
}

function parseLabels(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!text) return out;
  for (const pair of text.split(',')) {
    const i = pair.indexOf('=');
    if (i <= 0) throw new UsageError(`proxy: --labels expects k=v pairs, got '${pair}'`);
    out[pair.slice(0, i).trim()] = pair.slice(i + 1).trim();
  }
  return out;
}

export const verb: Verb = {
  summary: 'run the proxy (sidecar or gateway) driven by xDS',
  async run(args) {
    const { values } = parseCli('proxy', args, {
      xds: { type: 'string' },
      kind: { type: 'string' },
      'node-id': { type: 'string' },
      namespace: { type: 'string' },
      workload: { type: 'string' },
      labels: { type: 'string' },
      'service-account': { type: 'string' },
      ip: { type: 'string' },
      metadata: { type: 'string' },
      bootstrap: { type: 'string' },
      'admin-port': { type: 'string' },
      'admin-address': { type: 'string' },
      'health-port': { type: 'string' },
      'prometheus-port': { type: 'string' },
      'status-port': { type: 'string' },
      'app-probes': { type: 'string' },
      'drain-timeout': { type: 'string' },
      concurrency: { type: 'string' },
      'ready-file': { type: 'string' },
      'log-level': { type: 'string' },
      'ca-token-file': { type: 'string' },
      'ca-address': { type: 'string' },
      'ca-root-cert': { type: 'string' },
      'trust-domain': { type: 'string' },
      'cert-ttl': { type: 'string' },
      'key-algorithm': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    }, false);
    if (values.help) {
      process.stdout.write(help);
      return 0;
    }
    let boot: { xds?: string; node?: NodeJson; admin?: { port?: number } } = {};
    if (values.bootstrap) {
      try {
        boot = parseYaml(readFileSync(values.bootstrap, 'utf8')) ?? {};
      } catch (err) {
        throw new UsageError(`proxy: cannot read bootstrap '${values.bootstrap}': ${describeError(err)}`, err);
      }
    }
    const kind = values.kind ?? (boot.node?.metadata?.TRELLIS_PROXY_KIND as string | undefined) ?? 'sidecar';
    if (kind !== 'sidecar' && kind !== 'router') throw new UsageError(`proxy: --kind must be sidecar or router, got '${kind}'`);
    let extra: Record<string, unknown> = {};
    if (values.metadata) {
      try {
        extra = JSON.parse(values.metadata) as Record<string, unknown>;
      } catch (err) {
        throw new UsageError(`proxy: --metadata is not valid JSON: ${describeError(err)}`, err);
      }
      if (extra === null || typeof extra !== 'object' || Array.isArray(extra)) throw new UsageError('proxy: --metadata must be a JSON object');
    }
    const namespace = values.namespace ?? (boot.node?.metadata?.NAMESPACE as string | undefined) ?? 'default';
    const workload = values.workload ?? `${hostname()}-${process.pid}`;
    const ip = values.ip ?? '127.0.0.1';
    const labels = { ...((boot.node?.metadata?.LABELS as Record<string, string> | undefined) ?? {}), ...parseLabels(values.labels) };
    const metadata: Record<string, unknown> = {
      ...(boot.node?.metadata ?? {}),
      NAMESPACE: namespace,
      LABELS: labels,
      SERVICE_ACCOUNT: values['service-account'] ?? (boot.node?.metadata?.SERVICE_ACCOUNT as string | undefined) ?? 'default',
      WORKLOAD_NAME: workload,
      INSTANCE_IPS: ip,
      TRELLIS_PROXY_KIND: kind,
      ...extra,
    };
    const node: NodeJson = {
      id: values['node-id'] ?? boot.node?.id ?? `${kind}~${ip}~${workload}.${namespace}~${namespace}.svc.cluster.local`,
      cluster: boot.node?.cluster ?? workload,
      metadata,
      user_agent_name: 'trellis-proxy',
      user_agent_version: '0.1.0',
    };
    const drain = values['drain-timeout'] ? parseDurationMs(values['drain-timeout']) : 5000;
    if (drain === undefined) throw new UsageError(`proxy: --drain-timeout must be a duration like 5s, got '${values['drain-timeout']}'`);
    const concurrency = values.concurrency === undefined ? 2 : Number(values.concurrency);
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new UsageError(`proxy: --concurrency must be 1..64, got '${values.concurrency}'`);
    let appProbes: ReadonlyMap<string, AppProbe> | undefined;
    if (values['app-probes'] !== undefined) {
      try {
        appProbes = parseAppProbes(values['app-probes']);
      } catch (err) {
        throw new UsageError(`proxy: --app-probes: ${describeError(err)}`, err);
      }
    }
    const xdsAddress = values.xds ?? boot.xds ?? '127.0.0.1:15010';
    let identity: import('../proxy/tls/identity-agent.ts').IdentityAgentOptions | undefined;
    // The token: a file (as Istio's agent reads its service-account token), or TRELLIS_CA_TOKEN
    // (transparent capture: the sidecar's uid cannot read the state dir).
    const envToken = process.env.TRELLIS_CA_TOKEN;
    if (values['ca-token-file'] !== undefined || (envToken !== undefined && envToken !== '')) {
      const ttl = values['cert-ttl'] !== undefined ? parseDurationMs(values['cert-ttl']) : 0;
      if (ttl === undefined || (values['cert-ttl'] !== undefined && ttl < 1000)) throw new UsageError(`proxy: --cert-ttl must be a duration like 24h or 60s, got '${values['cert-ttl']}'`);
      const td = values['trust-domain'] ?? 'cluster.local';
      identity = {
        caAddress: values['ca-address'] ?? xdsAddress, nodeId: node.id!,
        token: values['ca-token-file'] !== undefined ? tokenFromFile(values['ca-token-file']) : () => envToken!,
        ...(values['ca-root-cert'] !== undefined ? { caRoots: caRootsFromFile(values['ca-root-cert']) } : {}),
        spiffeId: `spiffe://${td}/ns/${namespace}/sa/${String(metadata.SERVICE_ACCOUNT)}`, ttlSeconds: Math.round(ttl / 1000),
        ...(values['key-algorithm'] !== undefined ? { keyAlgorithm: parseKeyAlgorithm(values['key-algorithm']) } : {}),
      };
    }
    if (cluster.isWorker) {
      // A worker forked by the primary below: serve listeners, take config over IPC.
      const wlog = pino({ level: values['log-level'] ?? 'info', base: { component: 'proxy-worker', worker: cluster.worker?.id } }, pino.destination(2));
      await runWorker({ drainTimeoutMs: drain, log: (level, msg, fields) => wlog[level](fields ?? {}, msg), telemetry: telemetryOptions(node, identity) });
      return 0;
    }
    const log = pino({ level: values['log-level'] ?? 'info', base: { component: 'proxy', node: node.id } }, pino.destination(2));
    let quit: () => void = () => {};
    const proxy = await startProxy({
      xdsAddress,
      ...(identity !== undefined ? { identity } : {}),
      node,
      adminPort: parsePort('admin-port', values['admin-port'], boot.admin?.port ?? 15000),
      adminHost: values['admin-address'],
      healthPort: parsePort('health-port', values['health-port'], 15021),
      prometheusPort: parsePort('prometheus-port', values['prometheus-port'], 15090),
      statusPort: parsePort('status-port', values['status-port'], appProbes !== undefined ? 15020 : -1),
      appProbes,
      drainTimeoutMs: drain,
      concurrency,
      log: (level, msg, fields) => log[level](fields ?? {}, msg),
      setLogLevel: (l) => {
        if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(l)) return false;
        log.level = l;
        return true;
      },
      logLevel: () => log.level,
      onQuit: () => quit(),
    });
    if (values['ready-file']) {
      const tmp = `${values['ready-file']}.tmp`;
      writeFileSync(tmp, JSON.stringify({ ...proxy.ports, pid: process.pid, node: node.id }) + '\n');
      renameSync(tmp, values['ready-file']);
    }
    log.info({ ports: proxy.ports, xds: values.xds ?? boot.xds ?? '127.0.0.1:15010' }, 'proxy started');
    void proxy.ready.then(() => log.info({}, 'first complete config applied: ready'));
    return new Promise<number>((resolve) => {
      const stop = (why: string) => {
        log.info({ why }, 'draining');
        void proxy.shutdown().then(() => resolve(0), (err) => {
          log.error({ error: describeError(err) }, 'shutdown failed');
          resolve(1);
        });
      };
      quit = () => stop('quitquitquit');
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
  },
};
