/**
 * `trellis proxy-status`: what the control plane knows about every connected proxy, one row per
 * proxy with each xDS type's sync state (SYNCED / STALE / NACKED / NOT SENT), the config version
 * and the last ACK, like `istioctl proxy-status`. Reads the control plane's `/debug/syncz`.
 * Also holds the helpers the proxy-config verb shares: finding the control plane (flag, env
 * TRELLIS_CONTROL_URL, the running mesh of `trellis up`, 15014), fetching a debug endpoint, tables.
 */
import { TrellisError } from '../errors.ts';
import type { ProxyStatus } from '../control/xds/status.ts';
import { UsageError } from './args.ts';
import type { Verb } from './main.ts';
import { proxyStatus as spec } from './commands-inspect.ts';
import { parseCommand } from './spec.ts';
import { readState } from '../runtime/state.ts';
import { runningState, resolveStateDir } from '../runtime/meshes.ts';

/**
 * The control plane's debug URL: `--control`, then env TRELLIS_CONTROL_URL, then the control
 * plane of the mesh `trellis up` runs (`--state-dir`, TRELLIS_STATE_DIR, ./.trellis, or this
 * user's only running mesh), then Istio's default port 15014 on this host.
 */
export function controlUrl(flag: string | undefined, stateDirFlag?: string): string {
  const explicit = flag ?? process.env.TRELLIS_CONTROL_URL;
  if (explicit !== undefined && explicit !== '') return explicit.replace(/\/+$/, '');
  const { stateDir, source } = resolveStateDir(stateDirFlag, { requireLive: true });
  const state = runningState(readState(stateDir));
  if (state?.controlDebugPort !== undefined) return `http://127.0.0.1:${state.controlDebugPort}`;
  if (source === 'flag' || source === 'env') throw new TrellisError('MESH_NOT_RUNNING', `no mesh is running from ${stateDir}`);
  return 'http://127.0.0.1:15014';
}

/** GETs a control plane debug endpoint as JSON; CONTROL_UNREACHABLE / CONTROL_HTTP errors. */
export async function fetchControl(base: string, path: string): Promise<{ status: number; body: unknown }> {
  let res: Response;
  try {
    res = await fetch(base + path, { signal: AbortSignal.timeout(5000) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    throw new TrellisError(
      'CONTROL_UNREACHABLE',
      `cannot reach the control plane at ${base} (${why}); is a mesh running (\`trellis status\`)? Otherwise point to one with --control URL or TRELLIS_CONTROL_URL`,
      { cause: err },
    );
  }
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as unknown };
  } catch (err) {
    throw new TrellisError('CONTROL_HTTP', `${base}${path} answered ${res.status} with non-JSON: ${text.slice(0, 200)}`, { cause: err });
  }
}

/** Left-aligned columns separated by three spaces, like istioctl. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('   ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** "12s ago" style age of an ISO time relative to now. */
export function age(iso: string | undefined, now = Date.now()): string {
  if (iso === undefined) return 'never';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s ago`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m ago`;
}

const TYPES = ['CDS', 'LDS', 'EDS', 'RDS'] as const;

/** The control plane revision a proxy was injected for (node metadata REVISION), if any. */
function revisionOf(p: ProxyStatus): string | undefined {
  const r = p.node.metadata?.REVISION;
  return typeof r === 'string' ? r : undefined;
}

/**
 * The proxy-status table (plus NACK details) for a syncz answer. A REVISION column appears when
 * proxies carry one (injected on Kubernetes), as with several control plane revisions.
 */
export function renderProxyStatus(proxies: readonly ProxyStatus[], now = Date.now()): string {
  if (proxies.length === 0) return 'No proxies connected.\n';
  const withRevision = proxies.some((p) => revisionOf(p) !== undefined);
  const rows = proxies.map((p) => {
    const types = Object.values(p.types);
    const lastAck = types.map((t) => t.lastAckAt).filter((x): x is string => x !== undefined).sort().pop();
    const latest = types.filter((t) => t.lastAckAt === lastAck && lastAck !== undefined)[0];
    const cells = [p.id, ...TYPES.map((t) => p.types[t]?.state ?? 'NOT SENT'), latest?.ackedVersion ?? '-', age(lastAck, now)];
    return withRevision ? [cells[0], revisionOf(p) ?? '-', ...cells.slice(1)] : cells;
  });
  let out = renderTable(withRevision ? ['NAME', 'REVISION', ...TYPES, 'VERSION', 'LAST ACK'] : ['NAME', ...TYPES, 'VERSION', 'LAST ACK'], rows);
  for (const p of proxies) {
    for (const [t, s] of Object.entries(p.types)) {
      if (s.state === 'NACKED') out += `\n${p.id} ${t} NACKED version ${s.nackVersion ?? '?'}: ${s.nackError ?? ''}`;
    }
    for (const problem of p.problems) out += `\n${p.id} config problem: ${problem}`;
  }
  return out.endsWith('\n') ? out : out + '\n';
}

export const verb: Verb = {
  async run(args: string[]): Promise<number> {
    const { values, positionals } = parseCommand(spec, args);
    if (positionals.length > 0) throw new UsageError(`proxy-status: unexpected argument '${positionals[0]}'`);
    if (values.output !== 'table' && values.output !== 'json') throw new UsageError(`proxy-status: -o must be table or json, got '${values.output}'`);
    // Several --control URLs (one per revision) give one table of every proxy.
    const proxies: ProxyStatus[] = [];
    for (const url of values.control?.length ? values.control : [undefined]) {
      const base = controlUrl(url, values['state-dir']);
      const { status, body } = await fetchControl(base, '/debug/syncz');
      if (status !== 200 || !Array.isArray(body)) throw new TrellisError('CONTROL_HTTP', `${base}/debug/syncz answered ${status}`);
      proxies.push(...(body as ProxyStatus[]));
    }
    process.stdout.write(values.output === 'json' ? JSON.stringify(proxies, null, 2) + '\n' : renderProxyStatus(proxies));
    return 0;
  },
};
