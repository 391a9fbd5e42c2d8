/**
 * Who talks to this sidecar's inbound ports, and how: requests per inbound port, connection
 * security policy (mutual_tls / none) and client, counted per minute for the last minutes. A mesh
 * client is named by its verified principal, a plaintext one by its address and user-agent (all
 * there is to know about it). `trellis mtls` reads these counters from every sidecar to show which
 * clients still send plaintext, so a user knows when STRICT is safe. Fed by the
 * `trellis:http:request-end` channel; bounded in minutes kept and clients per minute.
 */
import type { StreamInfo } from '../http/stream-info.ts';
import type { ConnectionSecurity } from './peer-identity.ts';
import type { Stat } from '../admin/stats-format.ts';

/** The stat name prefix; the name is `mtls_observed|<port>|<policy>|<minute>|<client>` (workers sum by name). */
export const MtlsObservedPrefix = 'mtls_observed|';

const MINUTES_KEPT = 15;
const CLIENTS_PER_MINUTE = 64;

const Pipes = /\|/g;

function keyOf(statPrefix: string, policy: string, client: string): string {
  return `${statPrefix.slice('inbound_'.length)}|${policy}|${client.replace(Pipes, '/')}`;
}

export class MtlsStats {
  /** minute -> key (port|policy|client) -> count */
  readonly #byMinute = new Map<number, Map<string, number>>();

  /** A listener for the `trellis:http:request-end` channel. */
  readonly listener = (msg: unknown): void => this.record(msg as StreamInfo);

  /**
   * A mesh client's key, per connection (its security object): requests from many connections
   * interleave, so the previous request's key alone missed on most of them.
   */
  readonly #peerKeys = new WeakMap<ConnectionSecurity, { readonly statPrefix: string; readonly key: string }>();
  /** The previous key of a client without a peer identity, and what it was built from (its security object too: its policy is in the key). */
  #last: { statPrefix: string; sec: ConnectionSecurity; remote: string; userAgent: string | undefined; key: string } | undefined;

  record(info: StreamInfo, now = Date.now()): void {
    if (!info.statPrefix.startsWith('inbound_')) return;
    const key = this.#keyOf(info);
    const minute = Math.floor(now / 60_000);
    let m = this.#byMinute.get(minute);
    if (m === undefined) {
      this.#byMinute.set(minute, (m = new Map()));
      for (const k of this.#byMinute.keys()) if (k <= minute - MINUTES_KEPT) this.#byMinute.delete(k);
    }
    const n = m.get(key);
    if (n !== undefined) m.set(key, n + 1);
    else if (m.size < CLIENTS_PER_MINUTE) m.set(key, 1);
    else {
      const other = `${key.slice(0, key.indexOf('|', key.indexOf('|') + 1))}|(other clients)`;
      m.set(other, (m.get(other) ?? 0) + 1);
    }
  }

  /** `port|policy|client`, the client with '|' replaced (it separates the stat name's parts). */
  #keyOf(info: StreamInfo): string {
    const sec = info.connectionSecurity;
    const statPrefix = info.statPrefix;
    if (sec.peer !== undefined) {
      const known = this.#peerKeys.get(sec);
      if (known !== undefined && known.statPrefix === statPrefix) return known.key;
      const key = keyOf(statPrefix, sec.policy, sec.peer.principal);
      this.#peerKeys.set(sec, { statPrefix, key });
      return key;
    }
    const last = this.#last;
    const remote = info.downstreamDirectRemoteAddress;
    const userAgent = info.userAgent;
    if (last !== undefined && last.sec === sec && last.statPrefix === statPrefix && last.remote === remote && last.userAgent === userAgent) return last.key;
    const key = keyOf(statPrefix, sec.policy, `${remote} ${userAgent ?? '-'}`);
    this.#last = { statPrefix, sec, remote, userAgent, key };
    return key;
  }

  stats(): Stat[] {
    const out: Stat[] = [];
    for (const [minute, m] of this.#byMinute) {
      for (const [key, value] of m) {
        const [port, policy, client] = key.split('|');
        out.push({ name: `${MtlsObservedPrefix}${port}|${policy}|${minute}|${client}`, value, type: 'counter', family: 'inbound.mtls_observed_requests', labels: { port, connection_security_policy: policy, minute: String(minute), client } });
      }
    }
    return out;
  }
}
