/**
 * The one home of host name rules, shared by the control plane, the registry and the analyzer
 * (config/ is the layer all of them may import). Follows Istio's documented rules:
 * - DNS names compare case-insensitively; every matching function here folds case.
 * - A short name in a rule (`reviews`, no dot, no wildcard) means `reviews.<namespace>.svc.<suffix>`
 *   in the rule's namespace; anything with a dot, a leading `*` or an IP address is taken as
 *   written (Istio's ResolveShortnameToFQDN).
 * - `*` matches every host; `*.example.com` matches any host that ends in `.example.com` with at
 *   least one more label (`a.example.com`, `a.b.example.com`, and the narrower wildcard
 *   `*.a.example.com`), never `example.com` itself. Two hosts intersect when either matches the
 *   other (Istio's host.Name.Matches).
 * - Istio Gateway server hosts may carry a namespace prefix: `ns/host` admits VirtualServices of
 *   namespace `ns` only, `./host` those of the Gateway's own namespace, `*\/host` (or no prefix)
 *   any namespace.
 * - `exportTo`: unset or `*` every namespace, `.` the resource's own namespace, `~` none, names
 *   those namespaces.
 */

/** Lower-cases a DNS name (host names are case-insensitive, RFC 4343). */
export function foldHost(host: string): string {
  return host.toLowerCase();
}

/** True for `*` and `*.suffix` hosts. */
export function isWildcardHost(host: string): boolean {
  return host.startsWith('*');
}

/**
 * Istio's short-name expansion (ResolveShortnameToFQDN): only a dot-less name that is neither `*`
 * nor an IP address expands. Case is kept (routes name hosts as written); compare with the
 * functions below, or fold with foldHost.
 */
export function resolveHost(host: string, namespace: string, domainSuffix: string): string {
  if (host === '' || isWildcardHost(host) || host.includes('.') || host.includes(':')) return host;
  return `${host}.${namespace}.svc.${domainSuffix}`;
}

/** `name.namespace.svc.<suffix>`, the FQDN of a Kubernetes Service (lower case). */
export function serviceFqdn(name: string, namespace: string, domainSuffix: string): string {
  return foldHost(`${name}.${namespace}.svc.${domainSuffix}`);
}

/**
 * Other spellings that name the same Kubernetes Service (`name.ns`, `name.ns.svc`): clients'
 * DNS search paths resolve them, so a rule written that way still means the Service.
 */
export function kubernetesServiceAliases(host: string, domainSuffix: string): string[] {
  const h = foldHost(host);
  const parts = h.split('.');
  if (parts.length === 2) return [h, `${h}.svc.${domainSuffix}`];
  if (parts.length === 3 && parts[2] === 'svc') return [h, `${h}.${domainSuffix}`];
  return [h];
}

/** True when `pattern` (possibly `*` or `*.suffix`) matches the concrete or wildcard `host`. */
export function hostMatches(pattern: string, host: string): boolean {
  const p = foldHost(pattern);
  const h = foldHost(host);
  if (p === '*' || p === h) return true;
  if (!p.startsWith('*.')) return false;
  const suffix = p.slice(1); // ".example.com"
  if (h === '*') return false;
  if (h.startsWith('*.')) return h.length > p.length && h.endsWith(suffix);
  return h.length > suffix.length && h.endsWith(suffix);
}

/** True when two hosts (either may be a wildcard) can name a common host. */
export function hostsIntersect(a: string, b: string): boolean {
  return hostMatches(a, b) || hostMatches(b, a);
}

/** An Istio Gateway server host split into the namespace it admits (`*` = any) and the host. */
export interface GatewayServerHost {
  readonly namespace: string;
  readonly host: string;
}

/** Parses a Gateway server `hosts` entry (`host`, `ns/host`, `./host`, `*\/host`). */
export function parseGatewayServerHost(entry: string, gatewayNamespace: string): GatewayServerHost {
  const slash = entry.indexOf('/');
  if (slash < 0) return { namespace: '*', host: foldHost(entry) };
  const ns = entry.slice(0, slash);
  return { namespace: ns === '.' ? gatewayNamespace : ns, host: foldHost(entry.slice(slash + 1)) };
}

/**
 * True when a Gateway server host entry admits `host` of a VirtualService in `vsNamespace`: the
 * namespace prefix admits that namespace and the hosts intersect.
 */
export function gatewayServerAdmits(entry: string, gatewayNamespace: string, vsNamespace: string, host: string): boolean {
  const g = parseGatewayServerHost(entry, gatewayNamespace);
  return (g.namespace === '*' || g.namespace === vsNamespace) && hostsIntersect(g.host, host);
}

/** Istio `exportTo`: true when a resource of `ownNamespace` is visible in `namespace`. */
export function exportedTo(exportTo: readonly string[] | undefined, ownNamespace: string, namespace: string): boolean {
  if (exportTo === undefined || exportTo.length === 0) return true;
  for (const e of exportTo) {
    if (e === '*' || e === namespace || (e === '.' && namespace === ownNamespace)) return true;
  }
  return false;
}

/**
 * The namespaces a resource is exported to, `*` standing for all; `.` is replaced by the own
 * namespace and `~` (nowhere) yields an empty set.
 */
export function exportScopes(exportTo: readonly string[] | undefined, ownNamespace: string): ReadonlySet<string> {
  if (exportTo === undefined || exportTo.length === 0 || exportTo.includes('*')) return new Set(['*']);
  const out = new Set<string>();
  for (const e of exportTo) if (e !== '~') out.add(e === '.' ? ownNamespace : e);
  return out;
}

/** True when two export scopes (from exportScopes) share a namespace. */
export function exportScopesOverlap(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size === 0 || b.size === 0) return false;
  if (a.has('*') || b.has('*')) return true;
  for (const n of a) if (b.has(n)) return true;
  return false;
}

/**
 * Namespaces a Kubernetes Service is exported to, from its `networking.istio.io/exportTo`
 * annotation (comma-separated, same words as exportTo); unset means everywhere.
 */
export function serviceExportTo(annotations: Readonly<Record<string, string>> | undefined): string[] | undefined {
  const raw = annotations?.['networking.istio.io/exportTo'];
  if (raw === undefined || raw.trim() === '') return undefined;
  return raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
}
