/**
 * Host name rules the analyzers share, following Istio: a short name in a rule (`reviews`) is
 * resolved relative to the rule's namespace (`reviews.default.svc.cluster.local`); a name with a
 * dot or a leading `*` is taken as written. Wildcards (`*.example.com`) cover any host ending in
 * the suffix; `*` alone covers everything.
 */

/** Istio's short-name expansion (ResolveShortnameToFQDN): only dot-less, non-wildcard names expand. */
export function resolveHost(host: string, namespace: string, domainSuffix: string): string {
  if (host === '' || host.startsWith('*') || host.includes('.')) return host.toLowerCase();
  return `${host}.${namespace}.svc.${domainSuffix}`.toLowerCase();
}

/**
 * Other spellings a user may mean for the same Kubernetes Service (`name.ns`, `name.ns.svc`): DNS
 * search paths resolve them for clients, so an analyzer must not call them unknown.
 */
export function hostAliases(host: string, domainSuffix: string): string[] {
  const h = host.toLowerCase();
  const parts = h.split('.');
  if (parts.length === 2) return [h, `${h}.svc.${domainSuffix}`];
  if (parts.length === 3 && parts[2] === 'svc') return [h, `${h}.${domainSuffix}`];
  return [h];
}

/** True when `pattern` (possibly a wildcard) covers the concrete or wildcard host `host`. */
export function hostCovers(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase();
  const h = host.toLowerCase();
  if (p === '*' || p === h) return true;
  if (p.startsWith('*.')) {
    const suffix = p.slice(1); // ".example.com"
    if (h.startsWith('*.')) return h.slice(1).endsWith(suffix) && h.length > p.length;
    return h.endsWith(suffix) && h.length > suffix.length;
  }
  return false;
}

/** True when two hosts (either may be a wildcard) can name a common host. */
export function hostsIntersect(a: string, b: string): boolean {
  return hostCovers(a, b) || hostCovers(b, a);
}
