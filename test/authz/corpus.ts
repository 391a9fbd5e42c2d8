/**
 * The authorization corpus: requests with path, method, header and encoding tricks against a
 * workload guarded by ALLOW and DENY AuthorizationPolicies (authz-policies.yaml here), each with
 * the decision Istio documents for it. `allow` = forwarded to the app, `deny` = 403 from RBAC,
 * `reject` = refused as malformed before authorization (400).
 *
 * RBAC matches the path after the connection manager normalized it as MeshConfig
 * `pathNormalization` says, so a decision can depend on the mode: BASE (Istio's default) resolves
 * dot segments (also `%2e`) and decodes unreserved escapes, which stops `/a/../admin` and
 * `/%2e%2e/admin`; MERGE_SLASHES also merges `//admin` into `/admin`; DECODE_AND_MERGE_SLASHES
 * also decodes `%2F` and `%5C`, so `/admin%2Fusers` is `/admin/users`. Where a mode changes a
 * decision the case says so in `modes`. `/ADMIN` and friends never match the DENY (paths are
 * case-sensitive) but are outside the ALLOW list, so they are denied too. In no mode does a case
 * reach the app as an admin path.
 */

export type Decision = 'allow' | 'deny' | 'reject';

/** MeshConfig pathNormalization modes the corpus runs under (NONE is not a mode to guard paths with). */
export type PathMode = 'BASE' | 'MERGE_SLASHES' | 'DECODE_AND_MERGE_SLASHES';
export const PathModes: readonly PathMode[] = ['BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'];

/** A decision and, for a denial, the AuthorizationPolicy (namespace/name) that decides. */
export interface Outcome {
  readonly expect: Decision;
  readonly policy?: string;
}

export interface CorpusCase extends Outcome {
  readonly name: string;
  /** The raw request line target (sent byte for byte). */
  readonly target: string;
  readonly method?: string;
  readonly headers?: readonly (readonly [string, string])[];
  readonly body?: string;
  /** The outcome under the pathNormalization modes where it differs from `expect`/`policy`. */
  readonly modes?: Partial<Record<PathMode, Outcome>>;
  /** A deliberate, safer Trellis difference from Envoy (docs/security.md), with the reason. */
  readonly trellis?: Outcome & { readonly why: string };
}

/** What `side` must answer for case `c` under `mode`. */
export function outcomeOf(c: CorpusCase, mode: PathMode, side: 'trellis' | 'envoy'): Outcome {
  if (side === 'trellis' && c.trellis !== undefined) return c.trellis;
  return c.modes?.[mode] ?? c;
}

const DENY_ADMIN = 'shop/deny-admin';
const ALLOW_LIST = 'shop/allow-list';
const DENY_EVIL = 'shop/deny-evil-header';
const DENY_DELETE = 'shop/deny-api-delete';
const DENY_HOST = 'shop/deny-admin-host';

const c = (name: string, target: string, expect: Decision, policy?: string, more: Partial<CorpusCase> = {}): CorpusCase => ({ name, target, expect, policy, ...more });
/** Under BASE slashes are not merged: the path matches neither the DENY nor the ALLOW list. */
const unmergedBase: Partial<Record<PathMode, Outcome>> = { BASE: { expect: 'deny', policy: ALLOW_LIST } };
/** Under DECODE_AND_MERGE_SLASHES `%2F` / `%5C` are separators: the path is /admin/... */
const decodedAdmin: Partial<Record<PathMode, Outcome>> = { DECODE_AND_MERGE_SLASHES: { expect: 'deny', policy: DENY_ADMIN } };

export const corpus: readonly CorpusCase[] = [
  // --- plain paths --------------------------------------------------------------------------
  c('public path', '/public/index.html', 'allow'),
  c('api path', '/api/items', 'allow'),
  c('healthz exact', '/healthz', 'allow'),
  c('healthz with query', '/healthz?full=1', 'allow'),
  c('admin exact', '/admin', 'deny', DENY_ADMIN),
  c('admin trailing slash', '/admin/', 'deny', DENY_ADMIN),
  c('admin subpath', '/admin/users', 'deny', DENY_ADMIN),
  c('admin with query', '/admin?debug=1', 'deny', DENY_ADMIN),
  c('admin deep', '/admin/a/b/c', 'deny', DENY_ADMIN),
  c('not on allow list', '/private', 'deny', ALLOW_LIST),
  c('admin prefix but other word', '/administrator', 'deny', ALLOW_LIST),
  c('admin with suffix', '/admin.json', 'deny', ALLOW_LIST),
  c('root', '/', 'deny', ALLOW_LIST),
  // --- case -----------------------------------------------------------------------------------
  c('upper-case admin (case-sensitive: not the DENY, not on the ALLOW list)', '/ADMIN', 'deny', ALLOW_LIST),
  c('mixed-case admin', '/Admin/users', 'deny', ALLOW_LIST),
  c('upper-case public', '/PUBLIC/x', 'deny', ALLOW_LIST),
  // --- slashes and dot segments (normalized before matching) ----------------------------------
  c('double slash', '//admin', 'deny', DENY_ADMIN, { modes: unmergedBase }),
  c('triple slash', '///admin/x', 'deny', DENY_ADMIN, { modes: unmergedBase }),
  c('slash inside', '/admin//users', 'deny', DENY_ADMIN),
  c('dot segment', '/./admin', 'deny', DENY_ADMIN),
  c('dot-dot from public', '/public/../admin', 'deny', DENY_ADMIN),
  c('dot-dot twice', '/public/x/../../admin/', 'deny', DENY_ADMIN),
  c('dot-dot above root', '/../admin', 'deny', DENY_ADMIN),
  c('dot-dot leaves public', '/public/../private', 'deny', ALLOW_LIST),
  c('dot-dot stays in public', '/public/a/../b', 'allow', undefined),
  c('trailing dot segment', '/admin/.', 'deny', DENY_ADMIN),
  c('double slash into public', '//public//x', 'allow', undefined, { modes: unmergedBase }),
  // --- percent-encoding -------------------------------------------------------------------------
  c('encoded dot-dot', '/public/%2e%2e/admin', 'deny', DENY_ADMIN),
  c('encoded dot-dot upper', '/public/%2E%2E/admin', 'deny', DENY_ADMIN),
  c('half-encoded dot-dot', '/public/.%2e/admin', 'deny', DENY_ADMIN),
  c('encoded dot', '/%2e/admin', 'deny', DENY_ADMIN),
  c('encoded slash', '/admin%2fusers', 'deny', ALLOW_LIST, { modes: decodedAdmin }),
  c('encoded slash upper-case', '/admin%2Fusers', 'deny', ALLOW_LIST, { modes: decodedAdmin }),
  c('encoded slash before admin', '/public%2f..%2fadmin', 'deny', ALLOW_LIST, { modes: decodedAdmin }),
  c('encoded letter (unreserved, decoded)', '/%61dmin', 'deny', DENY_ADMIN),
  c('every letter encoded', '/%61%64%6D%69%6E/users', 'deny', DENY_ADMIN),
  c('double-encoded letter', '/%2561dmin', 'deny', ALLOW_LIST),
  c('encoded NUL is malformed', '/admin%00', 'reject', undefined),
  c('semicolon parameter', '/admin;x=1', 'deny', ALLOW_LIST),
  c('encoded space', '/admin%20', 'deny', ALLOW_LIST),
  c('tab encoded', '/admin%09', 'deny', ALLOW_LIST),
  c('backslash encoded', '/public%5c..%5cadmin', 'deny', ALLOW_LIST, { modes: decodedAdmin }),
  // --- templates --------------------------------------------------------------------------------
  c('template one segment', '/files/report/meta', 'allow'),
  c('template two segments', '/files/a/b/meta', 'deny', ALLOW_LIST),
  c('template empty segment merged', '/files//meta', 'deny', ALLOW_LIST),
  c('template rest', '/static/css/site.css', 'allow'),
  c('template rest dot-dot out', '/static/../admin', 'deny', DENY_ADMIN),
  // --- methods ----------------------------------------------------------------------------------
  c('POST api', '/api/items', 'allow', undefined, { method: 'POST', body: '{}' }),
  c('HEAD public', '/public/x', 'allow', undefined, { method: 'HEAD' }),
  c('DELETE api', '/api/items/1', 'deny', DENY_DELETE, { method: 'DELETE' }),
  c('DELETE api via dot-dot', '/public/../api/items/1', 'deny', DENY_DELETE, { method: 'DELETE' }),
  c('PUT not allowed', '/api/items/1', 'deny', ALLOW_LIST, { method: 'PUT' }),
  c('OPTIONS not allowed', '/api/items', 'deny', ALLOW_LIST, { method: 'OPTIONS' }),
  c('PATCH not allowed', '/api/items', 'deny', ALLOW_LIST, { method: 'PATCH' }),
  c('lower-case method is malformed', '/api/items', 'reject', undefined, { method: 'delete' }),
  c('method override header does not change the method', '/api/items/1', 'allow', undefined, { headers: [['x-http-method-override', 'DELETE']] }),
  c('DELETE on public', '/public/x', 'allow', undefined, { method: 'DELETE' }),
  // --- headers ----------------------------------------------------------------------------------
  c('evil header', '/public/x', 'deny', DENY_EVIL, { headers: [['x-evil', 'yes']] }),
  c('evil header name case', '/public/x', 'deny', DENY_EVIL, { headers: [['X-EVIL', 'yes']] }),
  c('evil header value case differs', '/public/x', 'allow', undefined, { headers: [['x-evil', 'YES']] }),
  c('evil header in a list', '/public/x', 'deny', DENY_EVIL, { headers: [['x-evil', 'no,yes']] }),
  c('evil header repeated', '/public/x', 'deny', DENY_EVIL, { headers: [['x-evil', 'no'], ['x-evil', 'yes']] }),
  c('evil header padded', '/public/x', 'deny', DENY_EVIL, { headers: [['x-evil', '  yes  ']] }),
  c('evil header other value', '/public/x', 'allow', undefined, { headers: [['x-evil', 'yesno']] }),
  c('header with space before colon is malformed', '/public/x', 'reject', undefined, { headers: [['x-evil ', 'yes']] }),
  // --- hosts ------------------------------------------------------------------------------------
  c('admin host', '/public/x', 'deny', DENY_HOST, { headers: [['host', 'admin.example.com']] }),
  c('admin host upper-case', '/public/x', 'deny', DENY_HOST, { headers: [['host', 'ADMIN.Example.COM']] }),
  c('admin host with port', '/public/x', 'deny', DENY_HOST, { headers: [['host', 'admin.example.com:9080']] }),
  c('other host', '/public/x', 'allow', undefined, { headers: [['host', 'ratings.shop']] }),
  c('absolute-form target to admin', 'http://ratings.shop/admin', 'deny', DENY_ADMIN),
  c('absolute-form target to admin host', 'http://admin.example.com/public/x', 'deny', DENY_HOST),
  // --- framing tricks ---------------------------------------------------------------------------
  c('content-length and chunked together is malformed', '/public/x', 'reject', undefined, { method: 'POST', headers: [['content-length', '3'], ['transfer-encoding', 'chunked']], body: '0\r\n\r\n' }),
  c('two Host headers: Envoy takes the first as the authority', '/public/x', 'allow', undefined, {
    headers: [['host', 'ratings.shop'], ['host', 'admin.example.com']],
    trellis: { expect: 'reject', why: 'RFC 9112 section 3.2: a request with more than one Host is answered 400' },
  }),
];
