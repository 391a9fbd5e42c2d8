/**
 * `trellis mtls`: the guided mTLS migration view. For every sidecar (of `trellis up`, or the admin
 * addresses given) and each inbound port: the effective mode (from the listener the proxy runs:
 * STRICT when only mTLS chains are served, PERMISSIVE when plaintext chains too, DISABLE when none
 * is mTLS), requests seen in the last minutes by mTLS and by plaintext, and the plaintext clients
 * by name (address and user-agent; mesh clients by principal). When a port's plaintext column is 0
 * for long enough, STRICT is safe for it. Reads the proxies' own counters (src/proxy/tls/mtls-stats.ts).
 */
import { UsageError } from './args.ts';
import type { Verb } from './main.ts';
import { mtls as spec } from './commands-inspect.ts';
import { parseCommand } from './spec.ts';
import { readState } from '../runtime/state.ts';
import type { ObservedPlaintext } from '../config/analyze/index.ts';
import { resolveStateDir } from '../runtime/meshes.ts';

/** One row of the report. */
export interface MtlsRow {
  workload: string;
  admin: string;
  port: string;
  mode: 'STRICT' | 'PERMISSIVE' | 'DISABLE' | 'UNKNOWN';
  mtlsRequests: number;
  plaintextRequests: number;
  /** Plaintext clients with their request counts, most first. */
  plaintextClients: { client: string; requests: number }[];
  /** Mesh (mTLS) clients by principal. */
  meshClients: { client: string; requests: number }[];
}

type Json = Record<string, unknown>;

async function getJson(base: string, path: string): Promise<unknown> {
  const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(3000) });
  if (!res.ok) throw new Error(`${base}${path}: HTTP ${res.status}`);
  return res.json();
}

/** Inbound port -> mode, from a proxy's /config_dump. */
export function inboundModes(dump: unknown): Map<string, MtlsRow['mode']> {
  const out = new Map<string, { mtls: boolean; plain: boolean }>();
  const configs = ((dump as { configs?: Json[] }).configs ?? []);
  const listeners = configs.flatMap((c) => ((c.dynamic_listeners as Json[] | undefined) ?? []).map((d) => (d.active_state as Json | undefined)?.listener as Json | undefined));
  for (const l of listeners) {
    if (l === undefined || l.traffic_direction !== 'INBOUND') continue;
    const name = String(l.name ?? '');
    for (const ch of (l.filter_chains as Json[] | undefined) ?? []) {
      const m = (ch.filter_chain_match ?? {}) as Json;
      const port = name === 'virtualInbound' ? (m.destination_port !== undefined ? String(m.destination_port) : undefined) : /_(\d+)$/.exec(name)?.[1];
      if (port === undefined) continue;
      const e = out.get(port) ?? { mtls: false, plain: false };
      if (ch.transport_socket !== undefined) e.mtls = true;
      else e.plain = true;
      out.set(port, e);
    }
  }
  return new Map([...out].map(([p, e]) => [p, e.mtls && e.plain ? 'PERMISSIVE' : e.mtls ? 'STRICT' : 'DISABLE']));
}

/** Rows for one proxy: its modes and its mtls_observed counters within `minutes`. */
export async function proxyRows(workload: string, admin: string, minutes: number, now = Date.now()): Promise<MtlsRow[]> {
  const base = `http://${admin}`;
  const [dump, stats] = await Promise.all([getJson(base, '/config_dump'), getJson(base, '/stats?format=json&filter=%5Emtls_observed')]);
  const modes = inboundModes(dump);
  const rows = new Map<string, MtlsRow>();
  const row = (port: string) => {
    let r = rows.get(port);
    if (r === undefined) rows.set(port, (r = { workload, admin, port, mode: modes.get(port) ?? 'UNKNOWN', mtlsRequests: 0, plaintextRequests: 0, plaintextClients: [], meshClients: [] }));
    return r;
  };
  for (const p of modes.keys()) row(p);
  const since = Math.floor(now / 60_000) - minutes + 1;
  const clients = new Map<string, number>();
  for (const s of ((stats as { stats?: { name: string; value: number }[] }).stats ?? [])) {
    const [, port, policy, minute, client] = s.name.split('|');
    if (Number(minute) < since) continue;
    const r = row(port);
    if (policy === 'mutual_tls') r.mtlsRequests += s.value;
    else r.plaintextRequests += s.value;
    const k = `${port}|${policy === 'mutual_tls' ? 'mesh' : 'plain'}|${client}`;
    clients.set(k, (clients.get(k) ?? 0) + s.value);
  }
  for (const [k, n] of clients) {
    const [port, kind, client] = k.split('|');
    (kind === 'mesh' ? row(port).meshClients : row(port).plaintextClients).push({ client, requests: n });
  }
  for (const r of rows.values()) {
    r.plaintextClients.sort((a, b) => b.requests - a.requests);
    r.meshClients.sort((a, b) => b.requests - a.requests);
  }
  return [...rows.values()].sort((a, b) => Number(a.port) - Number(b.port));
}

/** A sidecar to read: how to name it and its admin address. */
export interface SidecarTarget {
  readonly workload: string;
  readonly admin: string;
}

/** The sidecars of the `trellis up` mesh in `stateDir`, or undefined when none runs there. */
export function meshSidecars(stateDir: string): SidecarTarget[] | undefined {
  const state = readState(stateDir);
  if (state === undefined) return undefined;
  return state.processes
    .filter((p) => p.role === 'sidecar' && p.ports.admin !== undefined)
    .map((p) => ({ workload: `${p.namespace ?? 'default'}/${p.workload ?? p.name} (${p.replica ?? p.pid})`, admin: `${p.address ?? '127.0.0.1'}:${p.ports.admin}` }));
}

/**
 * The plaintext traffic each sidecar saw per inbound port in the last `minutes`, with the
 * workload's namespace and labels (from its node metadata), for `trellis analyze`'s
 * MTLS_PLAINTEXT_CLIENTS. Sidecars that cannot be read are reported in `errors`.
 */
export async function observedPlaintext(targets: readonly SidecarTarget[], minutes: number): Promise<{ observed: ObservedPlaintext[]; errors: string[] }> {
  const observed: ObservedPlaintext[] = [];
  const errors: string[] = [];
  for (const t of targets) {
    try {
      const info = (await getJson(`http://${t.admin}`, '/server_info')) as { node?: { metadata?: { NAMESPACE?: string; LABELS?: Record<string, string> } } };
      const md = info.node?.metadata ?? {};
      for (const r of await proxyRows(t.workload, t.admin, minutes)) {
        if (r.plaintextClients.length === 0) continue;
        observed.push({ workload: t.workload, namespace: md.NAMESPACE ?? 'default', labels: md.LABELS ?? {}, port: Number(r.port), minutes, clients: r.plaintextClients });
      }
    } catch (err) {
      errors.push(`${t.workload}: ${(err as Error).message}`);
    }
  }
  return { observed, errors };
}

export const verb: Verb = {
  async run(args: string[]): Promise<number> {
    const { values } = parseCommand(spec, args);
    const minutes = Number(values.minutes);
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > 15) throw new UsageError(`mtls: --minutes must be 1..15 (the proxies keep 15), got '${values.minutes}'`);
    if (values.output !== 'table' && values.output !== 'json') throw new UsageError(`mtls: -o must be table or json, not '${values.output}'`);
    let targets: SidecarTarget[];
    if (values.admin !== undefined && values.admin.length > 0) {
      targets = values.admin.map((a) => ({ workload: a, admin: a }));
    } else {
      const { stateDir } = resolveStateDir(values['state-dir'], { requireLive: true });
      const found = meshSidecars(stateDir);
      if (found === undefined) {
        process.stderr.write(`trellis mtls: no mesh in ${stateDir} (run \`trellis up\`, or pass --admin HOST:PORT)\n`);
        return 1;
      }
      targets = found;
    }
    const rows: MtlsRow[] = [];
    const errors: string[] = [];
    for (const t of targets) {
      try {
        rows.push(...(await proxyRows(t.workload, t.admin, minutes)));
      } catch (err) {
        errors.push(`${t.workload}: ${(err as Error).message}`);
      }
    }
    if (values.output === 'json') process.stdout.write(JSON.stringify({ minutes, rows, errors }, null, 2) + '\n');
    else {
      const head = ['WORKLOAD', 'PORT', 'MODE', `MTLS (${minutes}m)`, `PLAINTEXT (${minutes}m)`, 'PLAINTEXT CLIENTS'];
      const table = rows.map((r) => [r.workload, r.port, r.mode, String(r.mtlsRequests), String(r.plaintextRequests),
        r.plaintextClients.length === 0 ? (r.mode === 'PERMISSIVE' ? 'none: STRICT is safe' : '-') : r.plaintextClients.map((c) => `${c.client} (${c.requests})`).join(', ')]);
      const widths = head.map((h, i) => Math.max(h.length, ...table.map((t) => t[i].length)));
      const lines = [head, ...table].map((t) => t.map((c, i) => (i === t.length - 1 ? c : c.padEnd(widths[i]))).join('  '));
      for (const e of errors) lines.push(`error: ${e}`);
      process.stdout.write(lines.join('\n') + '\n');
    }
    return errors.length > 0 && rows.length === 0 ? 1 : 0;
  },
};
