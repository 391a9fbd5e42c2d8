/**
 * Istio's `exportTo` rule for config objects (VirtualService, DestinationRule, ServiceEntry):
 * unset or `*` = every namespace, `.` = the object's own namespace, `~` = none, names = those.
 */
export function exportedTo(exportTo: readonly string[] | undefined, ownNamespace: string, namespace: string): boolean {
  if (exportTo === undefined || exportTo.length === 0) return true;
  for (const e of exportTo) {
    if (e === '*') return true;
    if (e === '.' && namespace === ownNamespace) return true;
    if (e === namespace) return true;
  }
  return false;
}

/** True when `host` matches `pattern` where the pattern may be `*` or `*.suffix` (Istio host matching). */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1;
  return pattern === host;
}

/** True when two host patterns can match a common host (either one matches the other). */
export function hostsIntersect(a: string, b: string): boolean {
  return hostMatches(a, b) || hostMatches(b, a) || (a.startsWith('*.') && b.startsWith('*.') && (a.endsWith(b.slice(1)) || b.endsWith(a.slice(1))));
}
