/**
 * `trellis up --with prometheus`: a real Prometheus (the `prometheus` binary on PATH, e.g. Debian's
 * package) scraping the mesh the way Istio's Prometheus addon does: every proxy's
 * `/stats/prometheus` (job `envoy-stats`, Istio's metrics and Envoy's) and the control plane's
 * `/metrics` (job `pilot`), with `namespace` and `pod` target labels. Targets live in file_sd JSON
 * files the supervisor rewrites whenever a process starts or restarts (Prometheus picks the change
 * up by itself), so a replica that comes back on new ports keeps being scraped. Data and config
 * stay in STATE/prometheus; the process is recorded like the others, so `trellis down` stops it.
 */
import { accessSync, constants, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { stringify } from 'yaml';
import { TrellisError } from '../errors.ts';
import type { RuntimeState } from './state.ts';

/** Where the generated config, targets and data go. */
export function prometheusPaths(stateDir: string) {
  const dir = join(stateDir, 'prometheus');
  return { dir, config: join(dir, 'prometheus.yml'), proxies: join(dir, 'targets-proxies.json'), control: join(dir, 'targets-control.json'), data: join(dir, 'data') };
}

/** The `prometheus` binary on PATH, or a RUNTIME_TOOL_MISSING error saying how to get it. */
export function findPrometheus(env: NodeJS.ProcessEnv = process.env): string {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, 'prometheus');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  throw new TrellisError('RUNTIME_TOOL_MISSING', '--with prometheus needs the `prometheus` binary on PATH (Debian/Ubuntu: apt-get install prometheus)');
}

/** The scrape configuration (Prometheus YAML). */
export function scrapeConfig(paths: ReturnType<typeof prometheusPaths>, intervalSeconds: number): string {
  const interval = `${intervalSeconds}s`;
  return stringify({
    global: { scrape_interval: interval, evaluation_interval: interval },
    scrape_configs: [
      { job_name: 'pilot', metrics_path: '/metrics', file_sd_configs: [{ files: [paths.control] }] },
      { job_name: 'envoy-stats', metrics_path: '/stats/prometheus', file_sd_configs: [{ files: [paths.proxies] }] },
    ],
  });
}

interface TargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

/** file_sd target groups for the processes of a state: proxies (gateway, sidecars) and the control plane. */
export function scrapeTargets(state: RuntimeState): { proxies: TargetGroup[]; control: TargetGroup[] } {
  const proxies: TargetGroup[] = [];
  const control: TargetGroup[] = [];
  for (const p of state.processes) {
    const host = p.address ?? '127.0.0.1';
    if ((p.role === 'sidecar' || p.role === 'gateway') && p.ports.prometheus !== undefined && p.ports.prometheus > 0) {
      // A sidecar that merges its app's metrics is scraped on the status port, as Istio's injected
      // prometheus.io/port annotation points Prometheus at 15020: both sets in one target.
      const port = p.ports.status !== undefined && p.ports.status > 0 ? p.ports.status : p.ports.prometheus;
      proxies.push({ targets: [`${host}:${port}`], labels: { namespace: p.namespace ?? 'default', pod: p.replica ?? p.nodeId?.split('~')[2]?.split('.')[0] ?? p.name, ...(p.workload !== undefined ? { workload: p.workload } : {}) } });
    } else if (p.role === 'control' && p.ports.debug !== undefined) {
      control.push({ targets: [`127.0.0.1:${p.ports.debug}`], labels: { namespace: 'istio-system', pod: 'trellis-control' } });
    }
  }
  return { proxies, control };
}

function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/** Writes the config once and the target files (call again whenever processes change). */
export function writePrometheusFiles(state: RuntimeState, intervalSeconds: number, withConfig: boolean): ReturnType<typeof prometheusPaths> {
  const paths = prometheusPaths(state.stateDir);
  mkdirSync(paths.data, { recursive: true });
  if (withConfig) writeAtomic(paths.config, scrapeConfig(paths, intervalSeconds));
  const t = scrapeTargets(state);
  writeAtomic(paths.proxies, JSON.stringify(t.proxies, null, 2) + '\n');
  writeAtomic(paths.control, JSON.stringify(t.control, null, 2) + '\n');
  return paths;
}

/** The command line of the Prometheus server. */
export function prometheusCommand(binary: string, paths: ReturnType<typeof prometheusPaths>, port: number): string[] {
  return [binary, `--config.file=${paths.config}`, `--storage.tsdb.path=${paths.data}`, `--web.listen-address=127.0.0.1:${port}`, '--storage.tsdb.retention.time=1d', '--web.enable-lifecycle'];
}
