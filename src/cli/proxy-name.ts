/**
 * Which connected proxy the user means. `trellis status` prints replica names
 * (`web-api-v1-x7k2q`), `trellis proxy-status` node ids
 * (`sidecar~127.0.0.1~web-api-v1-x7k2q.default~default.svc.cluster.local`), and istioctl users
 * type `pod.namespace`; all of them, and a unique prefix of any, name a proxy here. An exact match
 * wins over prefixes, so `reviews-v1` is not ambiguous next to `reviews-v1-canary`.
 */
import { TrellisError } from '../errors.ts';

/** The `pod.namespace` and `pod` parts of an Istio-style node id, or undefined for other ids. */
export function podOfNodeId(id: string): { podNamespace: string; pod: string } | undefined {
  const parts = id.split('~');
  if (parts.length !== 4 || parts[2] === '') return undefined;
  const podNamespace = parts[2];
  const dot = podNamespace.lastIndexOf('.');
  return { podNamespace, pod: dot > 0 ? podNamespace.slice(0, dot) : podNamespace };
}

function names(id: string): string[] {
  const p = podOfNodeId(id);
  return p === undefined ? [id] : [id, p.podNamespace, p.pod];
}

/** Short form for lists: `pod.namespace`, or the id. */
export function displayName(id: string): string {
  return podOfNodeId(id)?.podNamespace ?? id;
}

/** The node id `query` names among `ids`; PROXY_NOT_FOUND or PROXY_AMBIGUOUS otherwise. */
export function resolveProxyName(query: string, ids: readonly string[]): string {
  const exact = ids.filter((id) => names(id).includes(query));
  if (exact.length === 1) return exact[0];
  const candidates = exact.length > 1 ? exact : ids.filter((id) => names(id).some((n) => n.startsWith(query)));
  if (candidates.length === 1) return candidates[0];
  if (candidates.length > 1) {
    throw new TrellisError('PROXY_AMBIGUOUS', `'${query}' matches ${candidates.length} proxies: ${candidates.map(displayName).sort().join(', ')}; give more of the name`);
  }
  const known = ids.map(displayName).sort();
  throw new TrellisError('PROXY_NOT_FOUND', `no connected proxy matches '${query}'${known.length > 0 ? ` (connected: ${known.join(', ')})` : ' (none connected)'}`);
}
