/**
 * `trellis up`: runs a whole mesh on this machine from a config directory (default: the built-in
 * demo, examples/demo/mesh): control plane, ingress gateway, and every `Workload` with its sidecar
 * (src/runtime). In the foreground it prints the summary and runs until Ctrl-C (SIGINT/SIGTERM),
 * then stops everything in order. `--detach` starts the same supervisor as a detached process,
 * waits until it reports ready (or failed) in state.json, prints the summary and exits. The
 * detaching parent loads no config code at all: the supervisor checks the config and, when it is
 * rejected, records the diagnostics as its error for the parent to print.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, closeSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from './args.ts';
import type { Verb } from './main.ts';
import { up as spec } from './commands-run.ts';
import { parseCommand } from './spec.ts';
import { alive, trellisBin } from '../runtime/child.ts';
import { readState, statePaths, type RuntimeState } from '../runtime/state.ts';
import { formatSummary } from '../runtime/summary.ts';
import { findPrometheus } from '../runtime/prometheus.ts';
import { sleep } from '../runtime/wait.ts';

/** The built-in demo's config directory. */
export const demoConfigDir = fileURLToPath(new URL('../../examples/demo/mesh', import.meta.url));

interface UpArgs {
  readonly configDirs: string[];
  readonly stateDir: string;
  readonly capture?: 'explicit' | 'transparent';
  readonly gatewayPort?: number;
  readonly startTimeout: number;
  readonly proxyConcurrency: number;
  readonly meshConfig?: string;
  readonly pluginCaDir?: string;
  /** `--with`: add-ons run beside the mesh. */
  readonly addons: readonly 'prometheus'[];
}

/** `up --detach`: starts the supervisor detached and waits for its verdict in state.json. */
async function detach(a: UpArgs, started: number): Promise<number> {
  const prev = readState(a.stateDir);
  if (prev !== undefined && alive(prev.supervisorPid) && (prev.phase === 'ready' || prev.phase === 'starting')) {
    process.stderr.write(`trellis up: a mesh is already running from ${prev.stateDir} (supervisor pid ${prev.supervisorPid}); run \`trellis down\` first or use another --state-dir\n`);
    return 1;
  }
  const paths = statePaths(a.stateDir);
  mkdirSync(paths.logs, { recursive: true });
  const logFile = join(paths.logs, 'supervisor.log');
  const fd = openSync(logFile, 'a');
  const childArgs = [trellisBin, 'up', ...a.configDirs.flatMap((d) => ['--config', d]), '--state-dir', paths.dir,
    '--start-timeout', String(a.startTimeout), '--proxy-concurrency', String(a.proxyConcurrency), '--supervise',
    ...(a.capture ? ['--capture', a.capture] : []), ...(a.gatewayPort !== undefined ? ['--gateway-port', String(a.gatewayPort)] : []),
    ...(a.meshConfig !== undefined ? ['--mesh-config', a.meshConfig] : []), ...(a.pluginCaDir !== undefined ? ['--plugin-ca-dir', a.pluginCaDir] : []),
    ...a.addons.flatMap((x) => ['--with', x])];
  const child = spawn(process.execPath, childArgs, { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let exited = false;
  child.once('exit', () => (exited = true));
  child.unref();
  // A backstop for a hung supervisor, which itself fails as soon as a process misses
  // --start-timeout.
  const waitMs = Math.max(120_000, 4 * a.startTimeout * 1000);
  const deadline = Date.now() + waitMs;
  const ours = (st: RuntimeState | undefined): st is RuntimeState => st !== undefined && st.supervisorPid === child.pid;
  while (Date.now() < deadline) {
    const st = readState(a.stateDir);
    if (ours(st)) {
      if (st.phase === 'ready') {
        process.stdout.write(formatSummary(st, started));
        return 0;
      }
      if (st.phase === 'failed' || (st.phase === 'stopped' && st.error !== undefined)) {
        // wait for the supervisor's rollback to finish before reporting
        while (alive(child.pid!) && Date.now() < deadline) await sleep(20);
        const nothing = st.error?.startsWith('the configuration has') === true;
        process.stderr.write(`trellis up: ${st.error ?? 'failed'}\n${nothing ? '' : `(everything that had started was stopped; logs in ${paths.logs})\n`}`);
        return 1;
      }
    }
    if (exited) {
      const st2 = readState(a.stateDir);
      process.stderr.write(`trellis up: ${ours(st2) && st2.error ? st2.error : `the supervisor exited early; see ${logFile}`}\n`);
      return 1;
    }
    await sleep(20);
  }
  process.stderr.write(`trellis up: not ready after ${waitMs / 1000} s; see ${paths.logs}; run \`trellis down\` to clean up\n`);
  return 1;
}

/** `up` in the foreground, or as the detached supervisor (`--supervise`). */
async function runHere(a: UpArgs, supervise: boolean, started: number): Promise<number> {
  const [{ ConfigRejected, Supervisor }, { formatDiagnostic }] = await Promise.all([import('../runtime/supervisor.ts'), import('./analyze.ts')]);
  const describeRejection = (err: InstanceType<typeof ConfigRejected>) =>
    `${err.message}\n${err.diagnostics.filter((d) => d.severity !== 'info').map(formatDiagnostic).join('\n')}`;
  const sup = new Supervisor({
    configDirs: a.configDirs, stateDir: a.stateDir, capture: a.capture, gatewayPort: a.gatewayPort, startTimeoutMs: a.startTimeout * 1000, proxyConcurrency: a.proxyConcurrency,
    ...(a.meshConfig !== undefined ? { meshConfig: a.meshConfig } : {}), ...(a.pluginCaDir !== undefined ? { pluginCaDir: a.pluginCaDir } : {}), addons: a.addons,
    log: (line) => process.stderr.write(`trellis up: ${line}\n`),
    describeError: (err) => (err instanceof ConfigRejected ? describeRejection(err) : (err as Error).message),
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
    if (!supervise) process.stdout.write(formatSummary(sup.state, started) + '(Ctrl-C stops everything)\n');
    else process.stdout.write(`supervisor ready (pid ${process.pid})\n`);
    await stopped;
    process.stderr.write('trellis up: stopping (workloads, then sidecars, gateway, control plane)\n');
    await sup.stop();
    process.stderr.write('trellis up: stopped\n');
    return 0;
  } catch (err) {
    if (err instanceof ConfigRejected) {
      process.stderr.write(`trellis up: ${describeRejection(err)}\n`);
      return 1;
    }
    process.stderr.write(`trellis up: ${(err as Error).message}\n(everything that had started was stopped)\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
  }
}

export const verb: Verb = {
  async run(args: string[]): Promise<number> {
    const { values } = parseCommand(spec, args);
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
    const proxyConcurrency = Number(values['proxy-concurrency']);
    if (!Number.isInteger(proxyConcurrency) || proxyConcurrency < 1 || proxyConcurrency > 64) throw new UsageError(`up: --proxy-concurrency must be 1..64, got '${values['proxy-concurrency']}'`);
    const addons = values.with ?? [];
    for (const x of addons) if (x !== 'prometheus') throw new UsageError(`up: --with takes prometheus, not '${x}'`);
    if (addons.length > 0 && !values.supervise) findPrometheus(); // a missing binary is reported before anything starts
    const a: UpArgs = { configDirs, stateDir: values['state-dir'], capture, gatewayPort, startTimeout, proxyConcurrency, meshConfig: values['mesh-config'], pluginCaDir: values['plugin-ca-dir'], addons: addons as 'prometheus'[] };
    const started = Date.now();
    if (values.detach && !values.supervise) return detach(a, started);
    return runHere(a, values.supervise === true, started);
  },
};
