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
import { startControlPlane } from '../control/control-plane.ts';

const help = `usage: trellis control [--config DIR]... [--host ADDR] [--xds-port N] [--debug-port N]
                       [--ready-file PATH] [--log-level info|debug|warn|error] [--auto-allocate-vips]

  --config DIR     mesh config directory or file, watched (repeatable; default: examples/demo/mesh)
  --host ADDR      address to listen on (default 127.0.0.1)
  --xds-port N     ADS gRPC port (default 15010; 0 = any free port)
  --debug-port N   debug HTTP port: /debug/syncz, /debug/config_dump, /debug/diagnostics (default 15014)
  --auto-allocate-vips
                   give Services without a clusterIP a VIP from 240.240.0.0/16 (transparent capture)
`;

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
      help: { type: 'boolean', short: 'h' },
    }, false);
    if (values.help) {
      process.stdout.write(help);
      return 0;
    }
    const log = pino({ level: values['log-level'] ?? 'info', base: { component: 'control' } }, pino.destination(2));
    const configPaths = values.config ?? [new URL('../../examples/demo/mesh', import.meta.url).pathname];
    const cp = await startControlPlane({
      configPaths,
      host: values.host,
      xdsPort: port('xds-port', values['xds-port'], 15010),
      debugPort: port('debug-port', values['debug-port'], 15014),
      ...(values['auto-allocate-vips'] ? { mesh: { autoAllocateVips: true } } : {}),
      log,
    });
    if (values['ready-file']) {
      const tmp = `${values['ready-file']}.tmp`;
      writeFileSync(tmp, JSON.stringify({ xds: cp.xdsPort, debug: cp.debugPort, pid: process.pid }) + '\n');
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
