/**
 * `trellis control`: runs the control plane (config directories -> xDS over ADS, debug HTTP on
 * 15014). Logs are JSON lines (pino) on stderr. SIGINT/SIGTERM close the ADS streams and servers
 * gracefully. `--ready-file` receives `{"xds": port, "debug": port, "pid": n}` once listening,
 * which is how `trellis up` learns ports chosen with `--xds-port 0`.
 */
import { writeFileSync, renameSync } from 'node:fs';
import { pino } from 'pino';
import { UsageError } from './args.ts';
import type { Verb } from './main.ts';
import { control as spec } from './commands-run.ts';
import { parseCommand } from './spec.ts';
import { startControlPlane, type ControlPlaneCaOptions } from '../control/control-plane.ts';
import { readMeshConfig } from '../config/mesh-config.ts';
import { parseKeyAlgorithm } from '../pki/keys.ts';
import { parseDurationMs } from '../config/schema/values.ts';
import { join } from 'node:path';
import { kubernetesControlOptions } from './control-kubernetes.ts';

function port(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`control: --${name} must be 0..65535, got '${v}'`);
  return n;
}

export const verb: Verb = {
  async run(args) {
    const { values } = parseCommand(spec, args);
    const log = pino({ level: values['log-level'], base: { component: 'control' } }, pino.destination(2));
    const configPaths = values.config ?? [new URL('../../examples/demo/mesh', import.meta.url).pathname];
    const meshConfig = values['mesh-config'] !== undefined ? readMeshConfig(values['mesh-config']) : undefined;
    if (meshConfig !== undefined && meshConfig.ignored.length > 0) log.info({ file: values['mesh-config'], fields: meshConfig.ignored }, 'mesh config: fields not acted on');
    if (values['ca-dir'] !== undefined && values['plugin-ca-dir'] !== undefined) throw new UsageError('control: --ca-dir and --plugin-ca-dir are exclusive');
    const caDir = values['plugin-ca-dir'] ?? values['ca-dir'];
    const kubeOptions = kubernetesControlOptions(values);
    const kube = kubeOptions !== undefined && meshConfig?.enablePrometheusMerge !== undefined
      ? { ...kubeOptions, injection: { ...kubeOptions.injection, prometheusMerge: meshConfig.enablePrometheusMerge } }
      : kubeOptions;
    let ca: ControlPlaneCaOptions | undefined;
    // On Kubernetes the CA runs unless --no-ca, its material from Secrets unless a directory is given.
    if (caDir !== undefined || kube?.ca !== undefined) {
      const ttl = values['workload-cert-ttl'] !== undefined ? parseDurationMs(values['workload-cert-ttl']) : undefined;
      if (values['workload-cert-ttl'] !== undefined && (ttl === undefined || ttl < 1000)) throw new UsageError(`control: --workload-cert-ttl must be a duration like 24h or 60s, got '${values['workload-cert-ttl']}'`);
      const tokenDir = values['ca-token-dir'] ?? (caDir !== undefined ? join(caDir, 'tokens') : undefined);
      ca = {
        ...(caDir !== undefined ? { dir: caDir, selfSigned: values['plugin-ca-dir'] === undefined } : {}),
        ...(tokenDir !== undefined ? { tokenDir } : {}),
        ...(ttl !== undefined ? { defaultTtlMs: ttl } : {}),
        ...(values['ca-key-algorithm'] !== undefined ? { keyAlgorithm: parseKeyAlgorithm(values['ca-key-algorithm']) } : {}),
      };
    }
    const mesh = {
      ...(values['auto-allocate-vips'] ? { autoAllocateVips: true } : {}),
      ...(meshConfig?.trustDomain !== undefined ? { trustDomain: meshConfig.trustDomain } : {}),
      ...(meshConfig?.rootNamespace !== undefined ? { rootNamespace: meshConfig.rootNamespace } : {}),
      ...(meshConfig?.outboundTrafficPolicy !== undefined ? { outboundTrafficPolicy: meshConfig.outboundTrafficPolicy } : {}),
      ...(meshConfig?.enableAutoMtls !== undefined ? { enableAutoMtls: meshConfig.enableAutoMtls } : {}),
      ...(meshConfig?.extAuthzProviders !== undefined ? { extAuthzProviders: meshConfig.extAuthzProviders } : {}),
      ...(meshConfig?.authorizationDenialNamesPolicy !== undefined ? { authorizationDenialNamesPolicy: meshConfig.authorizationDenialNamesPolicy } : {}),
      ...(meshConfig?.telemetry !== undefined ? { telemetry: meshConfig.telemetry } : {}),
      ...(meshConfig?.pathNormalization !== undefined ? { pathNormalization: meshConfig.pathNormalization } : {}),
    };
    if (kube && values.config) throw new UsageError('control: --config and --kubeconfig/--kubernetes are exclusive');
    const common = {
      host: values.host,
      xdsPort: port('xds-port', values['xds-port']),
      debugPort: port('debug-port', values['debug-port']),
      mesh,
      ...(ca !== undefined ? { ca } : {}),
      log,
    };
    // The Kubernetes client is loaded only for a control plane that reads from a cluster.
    const k8s = kube ? await (await import('../control/kube/kube-control.ts')).startKubernetesControl(kube, common) : undefined;
    const cp = k8s ? { ...k8s.cp, close: () => k8s.close() } : await startControlPlane({ configPaths, ...common });
    if (values['ready-file']) {
      const tmp = `${values['ready-file']}.tmp`;
      writeFileSync(tmp, JSON.stringify({ xds: cp.xdsPort, debug: cp.debugPort, pid: process.pid, ...(k8s ? { webhook: k8s.webhookPort, caTls: k8s.caTlsPort } : {}) }) + '\n');
      renameSync(tmp, values['ready-file']);
    }
    return new Promise<number>((resolve) => {
      const stop = (signal: string) => {
        log.info({ signal }, 'shutting down');
        void cp.close().then(() => resolve(0), () => resolve(1));
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
  },
};
