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
import { UsageError } from './args.ts';
import type { Verb } from './main.ts';
import { proxy as spec } from './commands-run.ts';
import { parseCommand } from './spec.ts';
import cluster from 'node:cluster';
import type { NodeJson } from '../xds/ads-wire.ts';
import { describeError } from '../errors.ts';
import { parseDurationMs } from '../config/schema/values.ts';
import { parseKeyAlgorithm } from '../pki/keys.ts';
import type { IdentityAgentOptions } from '../proxy/tls/identity-agent.ts';
import { parseAppProbes, type AppProbe } from '../proxy/admin/app-probes.ts';
import { appMetricsUrlFromIstioEnv, parseAppMetricsUrl, type AppMetricsTarget } from '../proxy/admin/app-metrics.ts';

function parsePort(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < -1 || n > 65535) throw new UsageError(`proxy: --${name} must be -1..65535, got '${v}'`);
  return n;
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
  async run(args) {
    const { values } = parseCommand(spec, args);
    let boot: { xds?: string; node?: NodeJson; admin?: { port?: number } } = {};
    if (values.bootstrap) {
      try {
        // yaml loads only for a bootstrap file: a proxy started with flags does not pay its memory.
        const { parse: parseYaml } = await import('yaml');
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
    const ip = values.ip;
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
    const drain = parseDurationMs(values['drain-timeout']);
    if (drain === undefined) throw new UsageError(`proxy: --drain-timeout must be a duration like 5s, got '${values['drain-timeout']}'`);
    const concurrency = Number(values.concurrency);
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new UsageError(`proxy: --concurrency must be 1..64, got '${values.concurrency}'`);
    let appProbes: ReadonlyMap<string, AppProbe> | undefined;
    if (values['app-probes'] !== undefined) {
      try {
        appProbes = parseAppProbes(values['app-probes']);
      } catch (err) {
        throw new UsageError(`proxy: --app-probes: ${describeError(err)}`, err);
      }
    }
    let appMetrics: AppMetricsTarget | undefined;
    try {
      const url = values['app-metrics-url'] ?? appMetricsUrlFromIstioEnv(process.env.ISTIO_PROMETHEUS_ANNOTATIONS);
      if (url !== undefined) appMetrics = parseAppMetricsUrl(url);
    } catch (err) {
      throw new UsageError(`proxy: --app-metrics-url (or ISTIO_PROMETHEUS_ANNOTATIONS): ${describeError(err)}`, err);
    }
    // The token: a file (as Istio's agent reads its service-account token), or TRELLIS_CA_TOKEN
    // (transparent capture: the sidecar's uid cannot read the state dir).
    const envToken = process.env.TRELLIS_CA_TOKEN;
    const hasIdentity = values['ca-token-file'] !== undefined || (envToken !== undefined && envToken !== '');
    const ttl = values['cert-ttl'] !== undefined ? parseDurationMs(values['cert-ttl']) : 0;
    if (hasIdentity && (ttl === undefined || (values['cert-ttl'] !== undefined && ttl < 1000))) throw new UsageError(`proxy: --cert-ttl must be a duration like 24h or 60s, got '${values['cert-ttl']}'`);
    const spiffeId = hasIdentity ? `spiffe://${values['trust-domain'] ?? 'cluster.local'}/ns/${namespace}/sa/${String(metadata.SERVICE_ACCOUNT)}` : undefined;
    // Each side imports only its own part: a worker loads the data plane and no xDS or CA client
    // (grpc-js, the admin servers), the primary no data plane when it has workers (proxy.ts).
    if (cluster.isWorker) {
      // A worker forked by the primary below: serve listeners, take config over IPC.
      const [{ runWorker }, { telemetryOptions }] = await Promise.all([import('../proxy/workers.ts'), import('../proxy/telemetry-options.ts')]);
      const wlog = pino({ level: values['log-level'], base: { component: 'proxy-worker', worker: cluster.worker?.id } }, pino.destination(2));
      await runWorker({ drainTimeoutMs: drain, log: (level, msg, fields) => wlog[level](fields ?? {}, msg), telemetry: telemetryOptions(node, spiffeId) });
      return 0;
    }
    let quit: () => void = () => {};
    const xdsAddress = values.xds ?? boot.xds ?? '127.0.0.1:15010';
    let identity: IdentityAgentOptions | undefined;
    if (spiffeId !== undefined) {
      const { caRootsFromFile, tokenFromFile } = await import('../proxy/tls/identity-agent.ts');
      identity = {
        caAddress: values['ca-address'] ?? xdsAddress, nodeId: node.id!,
        token: values['ca-token-file'] !== undefined ? tokenFromFile(values['ca-token-file']) : () => envToken!,
        ...(values['ca-root-cert'] !== undefined ? { caRoots: caRootsFromFile(values['ca-root-cert']) } : {}),
        spiffeId, ttlSeconds: Math.round(ttl! / 1000),
        ...(values['key-algorithm'] !== undefined ? { keyAlgorithm: parseKeyAlgorithm(values['key-algorithm']) } : {}),
      };
    }
    const { startProxy } = await import('../proxy/proxy.ts');
    const log = pino({ level: values['log-level'], base: { component: 'proxy', node: node.id } }, pino.destination(2));
    const proxy = await startProxy({
      xdsAddress,
      ...(identity !== undefined ? { identity } : {}),
      node,
      adminPort: parsePort('admin-port', values['admin-port'] ?? String(boot.admin?.port ?? 15000)),
      adminHost: values['admin-address'],
      healthPort: parsePort('health-port', values['health-port']),
      prometheusPort: parsePort('prometheus-port', values['prometheus-port']),
      statusPort: parsePort('status-port', values['status-port'] ?? (appProbes !== undefined || appMetrics !== undefined ? '15020' : '-1')),
      appProbes,
      ...(appMetrics !== undefined ? { appMetrics } : {}),
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
    log.info({ ports: proxy.ports, xds: xdsAddress }, 'proxy started');
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
