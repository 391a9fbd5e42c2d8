/**
 * `trellis up`: runs a whole mesh on this machine from a config directory (default: the built-in
 * demo, examples/demo): control plane, ingress gateway, and every `Workload` with its sidecar
 * (src/runtime). In the foreground it prints the summary and runs until Ctrl-C (SIGINT/SIGTERM),
 * then stops everything in order. `--detach` starts the same supervisor as a detached process,
 * waits until it reports ready (or failed), prints the summary and exits.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, closeSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatDiagnostic } from './analyze.ts';
import { parseCli, UsageError } from './args.ts';
import type { Verb } from './main.ts';
import { alive, trellisBin } from '../runtime/child.ts';
import { checkConfig, ConfigRejected, Supervisor } from '../runtime/supervisor.ts';
import { readState, statePaths } from '../runtime/state.ts';
import { formatSummary } from '../runtime/summary.ts';
import { findPrometheus } from '../runtime/prometheus.ts';
import { sleep } from '../runtime/wait.ts';

const HELP = `usage: trellis up [--config DIR]... [--detach] [--state-dir DIR] [--capture explicit|transparent]
                  [--gateway-port N] [--start-timeout SECONDS] [--mesh-config FILE] [--plugin-ca-dir DIR]
                  [--with prometheus]

Runs the control plane, an ingress gateway and every Workload (trellis.dev/v1alpha1) of the config
with its sidecar. Without --config it runs the built-in demo (examples/demo/mesh).

  --config DIR        mesh config directory (repeatable); watched: edits apply live
  --detach            run in the background; print the summary once everything is ready
  --state-dir DIR     where state.json and logs/ go (default .trellis)
  --capture MODE      explicit (default; no privileges) or transparent (root; network namespaces)
  --gateway-port N    local port for the gateway's first server port (default 8080 if free, else any;
                      0 = any free port)
  --start-timeout S   how long each process may take to become ready (default 15)
  --mesh-config FILE  Istio MeshConfig (trustDomain, outboundTrafficPolicy, enableAutoMtls, ...)
  --plugin-ca-dir DIR issue workload certificates from your PKI (ca-cert.pem, ca-key.pem,
                      root-cert.pem, cert-chain.pem); default: a self-signed root kept in STATE/ca
  --with prometheus   also run Prometheus (the \`prometheus\` binary on PATH) scraping every proxy's
                      /stats/prometheus and the control plane's /metrics every 5 s; prints its URL
`;

/** The built-in demo's config directory. */
export const demoConfigDir = fileURLToPath(new URL('../../examples/demo/mesh', import.meta.url));

function printDiagnostics(err: ConfigRejected): void {
  const shown = err.diagnostics.filter((d) => d.severity !== 'info');
  process.stderr.write(`trellis up: ${err.message}\n${shown.map(formatDiagnostic).join('\n')}\n`);
}

export const verb: Verb = {
  summary: 'run a whole mesh (control plane, gateway, sidecars, workloads) on this machine',
  async run(args: string[]): Promise<number> {
    const { values } = parseCli('up', args, {
      config: { type: 'string', multiple: true },
      detach: { type: 'boolean', default: false },
      'state-dir': { type: 'string', default: '.trellis' },
      capture: { type: 'string' },
      'gateway-port': { type: 'string' },
      'start-timeout': { type: 'string', default: '15' },
      'mesh-config': { type: 'string' },
      'plugin-ca-dir': { type: 'string' },
      with: { type: 'string', multiple: true },
      supervise: { type: 'boolean', default: false }, // internal: the detached supervisor
      help: { type: 'boolean', short: 'h', default: false },
    }, false);
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    const configDirs = values.config ?? [demoConfigDir];
    for (const d of configDirs) {
      try {
        statSync(d);
      } catch {
        throw new UsageError(`up: --config ${d}: no such file or directory`);
      }
    }
    const capture = values.capture;
    if (capture !== undefined && capture !== 'explicit' && capture !== 'transparent') throw new UsageError(`up: --capture must be explicit or transparent, not '${capture}'`);
    if (capture === 'transparent' && process.getuid?.() !== 0) {
      process.stderr.write('trellis up: --capture transparent needs root (it creates network namespaces, veth pairs and iptables rules); run it with sudo, or use the default explicit capture\n');
      return 1;
    }
    let gatewayPort: number | undefined;
    if (values['gateway-port'] !== undefined) {
      gatewayPort = Number(values['gateway-port']);
      if (!Number.isInteger(gatewayPort) || gatewayPort < 0 || gatewayPort > 65535) throw new UsageError(`up: --gateway-port must be 0..65535, got '${values['gateway-port']}'`);
    }
    const startTimeout = Number(values['start-timeout']);
    if (!(startTimeout > 0)) throw new UsageError(`up: --start-timeout must be a positive number of seconds`);
    const addons = values.with ?? [];
    for (const a of addons) if (a !== 'prometheus') throw new UsageError(`up: --with takes prometheus, not '${a}'`);
    if (addons.length > 0 && !values.supervise) findPrometheus();
    const stateDir = values['state-dir'];
    const started = Date.now();

    if (values.detach && !values.supervise) {
      try {
        await checkConfig(configDirs);
      } catch (err) {
        if (err instanceof ConfigRejected) {
          printDiagnostics(err);
          return 1;
        }
        throw err;
      }
      const prev = readState(stateDir);
      if (prev !== undefined && alive(prev.supervisorPid) && (prev.phase === 'ready' || prev.phase === 'starting')) {
        process.stderr.write(`trellis up: a mesh is already running from ${prev.stateDir} (supervisor pid ${prev.supervisorPid}); run \`trellis down\` first or use another --state-dir\n`);
        return 1;
      }
      const paths = statePaths(stateDir);
      mkdirSync(paths.logs, { recursive: true });
      const logFile = join(paths.logs, 'supervisor.log');
      const fd = openSync(logFile, 'a');
      const childArgs = [trellisBin, 'up', ...configDirs.flatMap((d) => ['--config', d]), '--state-dir', paths.dir,
        '--start-timeout', String(startTimeout), '--supervise',
        ...(capture ? ['--capture', capture] : []), ...(gatewayPort !== undefined ? ['--gateway-port', String(gatewayPort)] : []),
        ...(values['mesh-config'] !== undefined ? ['--mesh-config', values['mesh-config']] : []), ...(values['plugin-ca-dir'] !== undefined ? ['--plugin-ca-dir', values['plugin-ca-dir']] : []),
        ...addons.flatMap((a) => ['--with', a])];
      const child = spawn(process.execPath, childArgs, { detached: true, stdio: ['ignore', fd, fd] });
      closeSync(fd);
      let exited = false;
      child.once('exit', () => (exited = true));
      child.unref();
      // A backstop for a hung supervisor, which itself fails as soon as a process misses
      // --start-timeout: control plane, gateway, replicas and the endpoint push run one after another.
      const waitMs = Math.max(120_000, 4 * startTimeout * 1000);
      const deadline = Date.now() + waitMs;
      while (Date.now() < deadline) {
        const st = readState(stateDir);
        if (st !== undefined && st.supervisorPid === child.pid) {
          if (st.phase === 'ready') {
            process.stdout.write(formatSummary(st, started));
            return 0;
          }
          if (st.phase === 'failed' || (st.phase === 'stopped' && st.error !== undefined)) {
            // wait for the supervisor's rollback to finish before reporting
            while (alive(child.pid!) && Date.now() < deadline) await sleep(50);
            process.stderr.write(`trellis up: ${st.error ?? 'failed'}\n(everything that had started was stopped; logs in ${paths.logs})\n`);
            return 1;
          }
        }
        if (exited) {
          const st2 = readState(stateDir);
          const why = st2 !== undefined && st2.supervisorPid === child.pid && st2.error ? st2.error : `the supervisor exited early; see ${logFile}`;
          process.stderr.write(`trellis up: ${why}\n`);
          return 1;
        }
        await sleep(50);
      }
      process.stderr.write(`trellis up: not ready after ${waitMs / 1000} s; see ${paths.logs}; run \`trellis down\` to clean up\n`);
      return 1;
    }

    const sup = new Supervisor({
      configDirs, stateDir, capture, gatewayPort, startTimeoutMs: startTimeout * 1000, addons: addons as 'prometheus'[],
      ...(values['mesh-config'] !== undefined ? { meshConfig: values['mesh-config'] } : {}), ...(values['plugin-ca-dir'] !== undefined ? { pluginCaDir: values['plugin-ca-dir'] } : {}),
      log: (line) => process.stderr.write(`trellis up: ${line}\n`),
    });
    let stopRequested: (() => void) | undefined;
    const stopped = new Promise<void>((r) => (stopRequested = r));
    let signalled = false;
    const onSignal = () => {
      if (signalled) return;
      signalled = true;
      stopRequested?.();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('SIGHUP', onSignal);
    try {
      const start = sup.start();
      const first = await Promise.race([start.then(() => 'ready' as const), stopped.then(() => 'signal' as const)]);
      if (first === 'signal') {
        await start.catch(() => undefined);
        await sup.stop();
        return 0;
      }
      if (!values.supervise) process.stdout.write(formatSummary(sup.state, started) + '(Ctrl-C stops everything)\n');
      else process.stdout.write(`supervisor ready (pid ${process.pid})\n`);
      await stopped;
      process.stderr.write('trellis up: stopping (workloads, then sidecars, gateway, control plane)\n');
      await sup.stop();
      process.stderr.write('trellis up: stopped\n');
      return 0;
    } catch (err) {
      if (err instanceof ConfigRejected) {
        printDiagnostics(err);
        return 1;
      }
      process.stderr.write(`trellis up: ${(err as Error).message}\n(everything that had started was stopped)\n`);
      return 1;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('SIGHUP', onSignal);
    }
  },
};
