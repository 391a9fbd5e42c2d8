/**
 * Envoy's filter chain selection: given what is known about a new connection (destination
 * port and IP, SNI, transport protocol, ALPN, source), pick the one filter chain whose
 * `filter_chain_match` fits best. Envoy narrows criterion by criterion in a fixed order
 * (destination_port, prefix_ranges, server_names, transport_protocol, application_protocols,
 * direct_source_prefix_ranges, source_type, source_prefix_ranges, source_ports): at each step
 * the chains that match the criterion most specifically win, and chains that leave it unset are
 * used only when no chain names it. No match falls back to `default_filter_chain`.
 */
import net from 'node:net';

export interface ConnectionFacts {
  destinationPort: number;
  destinationIp: string;
  sourceIp: string;
  sourcePort: number;
  /** SNI from the TLS ClientHello ('' when none or not TLS). */
  serverName: string;
  /** `tls` or `raw_buffer`. */
  transportProtocol: string;
  /** ALPN offered by the client (TLS), or sniffed (`http/1.1`, `h2c`). */
  applicationProtocols: readonly string[];
}

export interface CidrRange {
  address_prefix: string;
  prefix_len?: number;
}

export interface FilterChainMatchJson {
  destination_port?: number;
  prefix_ranges?: CidrRange[];
  server_names?: string[];
  transport_protocol?: string;
  application_protocols?: string[];
  direct_source_prefix_ranges?: CidrRange[];
  source_type?: 'ANY' | 'SAME_IP_OR_LOOPBACK' | 'EXTERNAL';
  source_prefix_ranges?: CidrRange[];
  source_ports?: number[];
}

/** -1: criterion does not match; 0: unset (wildcard); >0: matches with that specificity. */
type Scorer = (m: FilterChainMatchJson, c: ConnectionFacts) => number;

function ipToBigInt(ip: string): { v: bigint; bits: number } | undefined {
  const clean = ip.startsWith('::ffff:') && net.isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
  if (net.isIPv4(clean)) {
    const parts = clean.split('.').map(Number);
    return { v: BigInt(((parts[0] << 24) >>> 0) + (parts[1] << 16) + (parts[2] << 8) + parts[3]), bits: 32 };
  }
  if (net.isIPv6(clean)) {
    const [head, tail] = clean.split('::');
    const h = head ? head.split(':') : [];
    const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
    const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
    let v = 0n;
    for (const g of groups) v = (v << 16n) + BigInt(parseInt(g || '0', 16));
    return { v, bits: 128 };
  }
  return undefined;
}

/** Prefix length of the longest range containing `ip`, or -1. */
export function longestCidrMatch(ranges: readonly CidrRange[], ip: string): number {
  const addr = ipToBigInt(ip);
  if (addr === undefined) return -1;
  let best = -1;
  for (const r of ranges) {
    const base = ipToBigInt(r.address_prefix);
    if (base === undefined || base.bits !== addr.bits) continue;
    const len = r.prefix_len ?? base.bits;
    const shift = BigInt(base.bits - len);
    if (base.v >> shift === addr.v >> shift) best = Math.max(best, len);
  }
  return best;
}

function isLoopbackOrSame(c: ConnectionFacts): boolean {
  return c.sourceIp === c.destinationIp || c.sourceIp.startsWith('127.') || c.sourceIp === '::1' || c.sourceIp === '::ffff:127.0.0.1';
}

const scorers: Scorer[] = [
  (m, c) => (m.destination_port === undefined || m.destination_port === 0 ? 0 : m.destination_port === c.destinationPort ? 1 : -1),
  (m, c) => (!m.prefix_ranges?.length ? 0 : longestCidrMatch(m.prefix_ranges, c.destinationIp) + 1 || -1),
  (m, c) => {
    if (!m.server_names?.length) return 0;
    const sni = c.serverName.toLowerCase();
    if (sni === '') return -1;
    let best = -1;
    for (const name of m.server_names) {
      const n = name.toLowerCase();
      // Exact beats any wildcard; longer wildcard suffixes beat shorter ones.
      if (n === sni) return 1_000_000;
      if (n.startsWith('*.') && sni.endsWith(n.slice(1)) && sni.length > n.length - 1) best = Math.max(best, n.length);
    }
    return best;
  },
  (m, c) => (!m.transport_protocol ? 0 : m.transport_protocol === c.transportProtocol ? 1 : -1),
  (m, c) => (!m.application_protocols?.length ? 0 : m.application_protocols.some((p) => c.applicationProtocols.includes(p)) ? 1 : -1),
  (m, c) => (!m.direct_source_prefix_ranges?.length ? 0 : longestCidrMatch(m.direct_source_prefix_ranges, c.sourceIp) + 1 || -1),
  (m, c) => {
    const t = m.source_type ?? 'ANY';
    if (t === 'ANY') return 0;
    const local = isLoopbackOrSame(c);
    return (t === 'SAME_IP_OR_LOOPBACK') === local ? 1 : -1;
  },
  (m, c) => (!m.source_prefix_ranges?.length ? 0 : longestCidrMatch(m.source_prefix_ranges, c.sourceIp) + 1 || -1),
  (m, c) => (!m.source_ports?.length ? 0 : m.source_ports.includes(c.sourcePort) ? 1 : -1),
];

/**
 * Index of the best chain for the connection, or -1 when none matches (use the default chain).
 * `matches[i]` is chain i's filter_chain_match (undefined = matches everything).
 */
export function selectFilterChain(matches: readonly (FilterChainMatchJson | undefined)[], c: ConnectionFacts): number {
  let candidates = matches.map((_, i) => i);
  for (const score of scorers) {
    let best = -1;
    const scored: { i: number; s: number }[] = [];
    for (const i of candidates) {
      const s = score(matches[i] ?? {}, c);
      if (s < 0) continue;
      scored.push({ i, s });
      if (s > best) best = s;
    }
    candidates = scored.filter((x) => x.s === best).map((x) => x.i);
    if (candidates.length === 0) return -1;
  }
  return candidates[0];
}

/** True when any chain needs to see TLS ClientHello data (SNI/ALPN/transport) to decide. */
export function needsTlsInspection(matches: readonly (FilterChainMatchJson | undefined)[]): boolean {
  return matches.some((m) => !!m && (m.server_names?.length || m.transport_protocol === 'tls' || m.application_protocols?.length));
}
