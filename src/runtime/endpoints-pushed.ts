/**
 * The last step of `trellis up`: replicas register (WorkloadEntry files) as they become ready, and
 * the mesh is ready only once every connected proxy has been sent, and has ACKed, the endpoints of
 * every registered replica, so the first request through the gateway does not meet
 * `no healthy upstream`. Read from the control plane's /debug/syncz and /debug/config_dump.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { httpJson, sleep } from './wait.ts';

type SyncRow = { id: string; types: Record<string, { state: string }> };
type Dump = { types?: Record<string, { typeUrl?: string; resources?: unknown[] }> };

/** `address:port` of every endpoint registered in the runtime's WorkloadEntry files. */
export function registeredEndpoints(dir: string): Set<string> {
  const out = new Set<string>();
  let files: string[] = [];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  } catch {
    return out;
  }
  for (const f of files) {
    try {
      const doc = parseYaml(readFileSync(join(dir, f), 'utf8')) as { spec?: { address?: string; ports?: Record<string, number> } };
      for (const p of Object.values(doc?.spec?.ports ?? {})) out.add(`${doc?.spec?.address}:${p}`);
    } catch {
      // A file being rewritten right now: the next poll reads it.
    }
  }
  return out;
}

/** Adds the `address:port` of every endpoint in ClusterLoadAssignments (proto3 JSON) to `into`. */
export function collectEndpoints(assignments: unknown[], into: Set<string>): void {
  for (const a of assignments as { endpoints?: { lb_endpoints?: { endpoint?: { address?: { socket_address?: { address?: string; port_value?: number } } } }[] }[] }[]) {
    for (const l of a.endpoints ?? []) {
      for (const e of l.lb_endpoints ?? []) {
        const sa = e.endpoint?.address?.socket_address;
        if (sa?.address !== undefined) into.add(`${sa.address}:${sa.port_value ?? 0}`);
      }
    }
  }
}

/** The proxies' sync state in one string: it changes with every push and every ACK. */
function signature(proxies: readonly SyncRow[]): string {
  return JSON.stringify(proxies.map((p) => [p.id, p.types]));
}

/**
 * Waits until every proxy has every registered endpoint. The config dumps (large) are read only
 * when every proxy is SYNCED and the sync state differs from the last look: a push or an ACK
 * happened since. Bounded: a proxy scoped away from some service (Sidecar egress) never gets its
 * endpoints, so after `timeoutMs` this proceeds and says so.
 */
export async function waitForEndpointsPushed(debugPort: number, registrationDir: string, log: (line: string) => void, timeoutMs = 20_000): Promise<void> {
  const expected = registeredEndpoints(registrationDir);
  if (expected.size === 0) return;
  const deadline = Date.now() + timeoutMs;
  let checked = '';
  while (Date.now() < deadline) {
    const proxies = (await httpJson(debugPort, '/debug/syncz', 2000)) as SyncRow[] | undefined;
    const synced = Array.isArray(proxies) && proxies.length > 0 && proxies.every((p) => Object.values(p.types).every((t) => t.state === 'SYNCED' || t.state === 'NOT SENT'));
    if (synced && signature(proxies) !== checked) {
      checked = signature(proxies);
      if (await allHaveEndpoints(debugPort, proxies, expected)) return;
    }
    await sleep(50);
  }
  log(`not every proxy has every workload's endpoints after ${timeoutMs} ms; continuing`);
}

/** True when every proxy was sent every endpoint in `expected`. */
async function allHaveEndpoints(debugPort: number, proxies: readonly SyncRow[], expected: ReadonlySet<string>): Promise<boolean> {
  const dumps = (await Promise.all(proxies.map((p) => httpJson(debugPort, `/debug/config_dump?proxyID=${encodeURIComponent(p.id)}`, 2000)))) as (Dump | undefined)[];
  for (const dump of dumps) {
    const sent = new Set<string>();
    for (const t of Object.values(dump?.types ?? {})) if (t.typeUrl?.endsWith('ClusterLoadAssignment')) collectEndpoints(t.resources ?? [], sent);
    for (const e of expected) if (!sent.has(e)) return false;
  }
  return true;
}
