/**
 * The DNS seam for STRICT_DNS clusters: a `Resolver` turns a name into addresses honouring the
 * cluster's dns_lookup_family. The default uses node:dns `lookup` (the system resolver, so
 * `localhost` and /etc/hosts work as they do for every other program); tests may inject their own.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

export type LookupFamily = 'AUTO' | 'V4_ONLY' | 'V6_ONLY' | 'V4_PREFERRED' | 'ALL';

/** Resolves `name` to IP addresses (empty = no answer). Rejects on resolver failure. */
export type Resolver = (name: string, family: LookupFamily) => Promise<string[]>;

/** node:dns resolver with Envoy's family semantics (AUTO prefers IPv6, V4_PREFERRED prefers IPv4). */
export const systemResolver: Resolver = async (name, family) => {
  if (isIP(name) !== 0) return [name];
  const all = await lookup(name, { all: true });
  const v4 = all.filter((a) => a.family === 4).map((a) => a.address);
  const v6 = all.filter((a) => a.family === 6).map((a) => a.address);
  switch (family) {
    case 'V4_ONLY': return v4;
    case 'V6_ONLY': return v6;
    case 'V4_PREFERRED': return v4.length > 0 ? v4 : v6;
    case 'ALL': return [...v4, ...v6];
    case 'AUTO': return v6.length > 0 ? v6 : v4;
  }
};
