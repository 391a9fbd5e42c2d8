/**
 * MeshConfig `extensionProviders` of the kinds authorization uses (envoyExtAuthzHttp,
 * envoyExtAuthzGrpc, for AuthorizationPolicy CUSTOM), checked and typed. Errors are
 * MESH_CONFIG_INVALID naming the file and the field, like the rest of the MeshConfig reader
 * (mesh-config.ts); providers of other kinds (tracing, access logs...) are left to their readers.
 */
/** Request body forwarding to the authorizer (Istio includeRequestBodyInCheck). */
export interface RequestBodyInCheck { readonly maxRequestBytes?: number; readonly allowPartialMessage?: boolean; readonly packAsBytes?: boolean }

/** An HTTP ext_authz provider (Istio MeshConfig.ExtensionProvider.envoyExtAuthzHttp). */
export interface ExtAuthzHttpProvider {
  readonly kind: 'http';
  readonly name: string;
  readonly service: string;
  readonly port: number;
  readonly timeout?: string;
  readonly pathPrefix?: string;
  readonly failOpen?: boolean;
  readonly statusOnError?: string;
  readonly includeRequestHeadersInCheck?: readonly string[];
  readonly includeAdditionalHeadersInCheck?: Readonly<Record<string, string>>;
  readonly headersToUpstreamOnAllow?: readonly string[];
  readonly headersToDownstreamOnDeny?: readonly string[];
  readonly headersToDownstreamOnAllow?: readonly string[];
  readonly includeRequestBodyInCheck?: RequestBodyInCheck;
}

/** A gRPC ext_authz provider (Istio MeshConfig.ExtensionProvider.envoyExtAuthzGrpc). */
export interface ExtAuthzGrpcProvider {
  readonly kind: 'grpc';
  readonly name: string;
  readonly service: string;
  readonly port: number;
  readonly timeout?: string;
  readonly failOpen?: boolean;
  readonly statusOnError?: string;
  readonly includeRequestBodyInCheck?: RequestBodyInCheck;
}

export type ExtensionProvider = ExtAuthzHttpProvider | ExtAuthzGrpcProvider;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Builds the reader's error for a field (mesh-config.ts: MESH_CONFIG_INVALID naming file and field). */
type Bad = (field: string, msg: string) => Error;

function strings(p: Obj, f: string, at: string, bad: Bad): string[] | undefined {
  const v = p[f];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw bad(`${at}.${f}`, 'expected a list of strings');
  // Istio's validation: a lone '*' would forward every header; it asks for a prefix or suffix.
  if (v.includes('*')) throw bad(`${at}.${f}`, 'a single wildcard ("*") is not supported, use a prefix or suffix match');
  return v as string[];
}

/** The ext_authz providers among MeshConfig `extensionProviders` (other kinds are skipped). */
export function extAuthzProviders(entries: readonly Readonly<Obj>[], bad: Bad): ExtensionProvider[] {
  const out: ExtensionProvider[] = [];
  const names = new Set<string>();
  entries.forEach((raw, i) => {
    const at = `extensionProviders[${i}]`;
    const name = String(raw.name);
    if (names.has(name)) throw bad(`${at}.name`, `extension provider name must be unique, found duplicate: ${name}`);
    names.add(name);
    const kind = raw.envoyExtAuthzHttp !== undefined ? 'envoyExtAuthzHttp' : raw.envoyExtAuthzGrpc !== undefined ? 'envoyExtAuthzGrpc' : undefined;
    if (kind === undefined) return;
    const p = raw[kind];
    const pat = `${at}.${kind}`;
    if (!isObj(p)) throw bad(pat, 'expected a mapping');
    if (typeof p.service !== 'string' || p.service === '') throw bad(`${pat}.service`, 'is required');
    const port = Number(p.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad(`${pat}.port`, `must be in [1, 65535], got ${JSON.stringify(p.port)}`);
    if (p.statusOnError !== undefined && !/^[1-5]\d\d$/.test(String(p.statusOnError))) throw bad(`${pat}.statusOnError`, `invalid status ${JSON.stringify(p.statusOnError)}`);
    if (p.timeout !== undefined && !/^\d+(\.\d+)?(ms|s|m|h)$/.test(String(p.timeout))) throw bad(`${pat}.timeout`, `invalid duration ${JSON.stringify(p.timeout)}`);
    if (p.includeRequestBodyInCheck !== undefined && !isObj(p.includeRequestBodyInCheck)) throw bad(`${pat}.includeRequestBodyInCheck`, 'expected a mapping');
    const common = {
      name, service: p.service, port,
      ...(p.timeout !== undefined ? { timeout: String(p.timeout) } : {}),
      ...(p.failOpen !== undefined ? { failOpen: p.failOpen === true } : {}),
      ...(p.statusOnError !== undefined ? { statusOnError: String(p.statusOnError) } : {}),
      ...(isObj(p.includeRequestBodyInCheck) ? { includeRequestBodyInCheck: p.includeRequestBodyInCheck as RequestBodyInCheck } : {}),
    };
    if (kind === 'envoyExtAuthzGrpc') {
      out.push({ kind: 'grpc', ...common });
      return;
    }
    if (p.pathPrefix !== undefined && !String(p.pathPrefix).startsWith('/')) throw bad(`${pat}.pathPrefix`, 'must begin with /');
    if (p.includeAdditionalHeadersInCheck !== undefined && !isObj(p.includeAdditionalHeadersInCheck)) throw bad(`${pat}.includeAdditionalHeadersInCheck`, 'expected a mapping');
    out.push({
      kind: 'http', ...common,
      ...(p.pathPrefix !== undefined ? { pathPrefix: String(p.pathPrefix) } : {}),
      includeRequestHeadersInCheck: strings(p, 'includeRequestHeadersInCheck', pat, bad) ?? strings(p, 'includeHeadersInCheck', pat, bad),
      headersToUpstreamOnAllow: strings(p, 'headersToUpstreamOnAllow', pat, bad),
      headersToDownstreamOnDeny: strings(p, 'headersToDownstreamOnDeny', pat, bad),
      headersToDownstreamOnAllow: strings(p, 'headersToDownstreamOnAllow', pat, bad),
      ...(isObj(p.includeAdditionalHeadersInCheck) ? { includeAdditionalHeadersInCheck: p.includeAdditionalHeadersInCheck as Record<string, string> } : {}),
    });
  });
  return out;
}
