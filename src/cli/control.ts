/**
 * `trellis control`: runs the control plane (config directories -> xDS over ADS, debug HTTP on
 * 15014). Logs are JSON lines (pino) on stderr. SIGINT/SIGTERM close the ADS streams and servers
 * gracefully. `--ready-file` receives `{"xds": port, "debug": port, "pid": n}` once listening,
 * which is how `trellis up` learns ports chosen with `--xds-port 0`.
 */
import { writeFileSync, renameSync } from 'node:fs';
import { pino } from 'pino';
import { parseCli, UsageError } from './args.ts';
import type { Verb } from './main.ts';
import { startControlPlane, type ControlPlaneCaOptions } from '../control/control-plane.ts';
import { readMeshConfig } from '../config/mesh-config.ts';
import { parseKeyAlgorithm } from '../pki/keys.ts';
import { join } from 'node:path';
import { parseDurationMs } from './proxy.ts';
import { kubernetesControlOptions, kubernetesHelp, kubernetesOptions } from './control-kubernetes.ts';

const help = `usage: trellis control [--config DIR]... [--host ADDR] [--xds-port N] [--debug-port N]
                       [--ready-file PATH] [--log-level info|debug|warn|error] [--auto-allocate-vips]
                       [--mesh-config FILE] [--ca-dir DIR | --plugin-ca-dir DIR] [--ca-token-dir DIR]
                       [--workload-cert-ttl DURATION] [--ca-key-algorithm ECDSA_P256|RSA_2048]

  --config DIR     mesh config directory or file, watched (repeatable; default: examples/demo/mesh)
  --host ADDR      address to listen on (default 127.0.0.1)
  --xds-port N     ADS gRPC port (default 15010; 0 = any free port)
  --debug-port N   debug HTTP port: /debug/syncz, /debug/config_dump, /debug/diagnostics (default 15014)
  --auto-allocate-vips
                   give Services without a clusterIP a VIP from 240.240.0.0/16 (transparent capture)
  --mesh-config FILE
                   Istio MeshConfig (trustDomain, rootNamespace, outboundTrafficPolicy, enableAutoMtls,
                   pathNormalization, ...)
  --ca-dir DIR     run the mesh CA with a self-signed root kept in DIR (generated on first start)
  --plugin-ca-dir DIR
                   run the mesh CA from an existing PKI: ca-cert.pem, ca-key.pem, root-cert.pem,
                   cert-chain.pem (Istio's plug-in CA layout); watched for rotation
  --ca-token-dir DIR
                   per-workload tokens callers of CreateCertificate present (default DIR/tokens)
  --workload-cert-ttl DURATION
                   default workload certificate lifetime (default 24h)
  --ca-key-algorithm ALG
                   key of a generated self-signed root: ECDSA_P256 (default) or RSA_2048
${kubernetesHelp}`;

function port(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`control: --${name} must be 0..65535, got '${v}'`);
  return n;
}

export const verb: Verb = {
  summary: 'run the control plane (mesh config -> Envoy xDS over ADS)',
  async run(args) {
    const { values } = parseCli('control', args, {
      config: { type: 'string', multiple: true },
      host: { type: 'string' },
      'xds-port': { type: 'string' },
      'debug-port': { type: 'string' },
      'ready-file': { type: 'string' },
      'log-level': { type: 'string' },
      'auto-allocate-vips': { type: 'boolean' },
      'mesh-config': { type: 'string' },
      'ca-dir': { type: 'string' },
      'plugin-ca-dir': { type: 'string' },
      'ca-token-dir': { type: 'string' },
      'workload-cert-ttl': { type: 'string' },
      'ca-key-algorithm': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      ...kubernetesOptions,
    }, false);
    if (values.help) {
      process.stdout.write(help);
      return 0;
    }
    const log = pino({ level: values['log-level'] ?? 'info', base: { component: 'control' } }, pino.destination(2));
    const configPaths = values.config ?? [new URL('../../examples/demo/mesh', import.meta.url).pathname];
    const meshConfig = values['mesh-config'] !== undefined ? readMeshConfig(values['mesh-config']) : undefined;
    if (meshConfig !== undefined && meshConfig.ignored.length > 0) log.info({ file: values['mesh-config'], fields: meshConfig.ignored }, 'mesh config: fields not acted on');
    if (values['ca-dir'] !== undefined && values['plugin-ca-dir'] !== undefined) throw new UsageError('control: --ca-dir and --plugin-ca-dir are exclusive');
    const caDir = values['plugin-ca-dir'] ?? values['ca-dir'];
    const kube = kubernetesControlOptions(values);
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
      ...(meshConfig?.telemetry !== undefined ? { telemetry: meshConfig.telemetry } : {}),
      ...(meshConfig?.pathNormalization !== undefined ? { pathNormalization: meshConfig.pathNormalization } : {}),
    };
    if (kube && values.config) throw new UsageError('control: --config and --kubeconfig/--kubernetes are exclusive');
    const common = {
      host: values.host,
      xdsPort: port('xds-port', values['xds-port'], 15010),
      debugPort: port('debug-port', values['debug-port'], 15014),
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
