/**
 * The control plane's JWKS resolver (what istiod's JwtKeyResolver does): for each
 * RequestAuthentication rule without inline `jwks` it fetches the key set from `jwksUri`, or
 * discovers it from `<issuer>/.well-known/openid-configuration` (its `jwks_uri`), keeps it, and
 * refreshes it every `refreshMs`. Translation inlines what it holds, so proxies (Trellis or stock
 * Envoy) never fetch. A failed or malformed fetch keeps the last good key set; with none, the
 * lookup is undefined and translation installs keys that reject every token: a fetch failure never
 * lets a bad token in. Problems are reported as diagnostics naming the resource and field.
 */
import type { Diagnostic } from '../../config/resource.ts';
import { parseJwks } from '../../config/jwks.ts';

/** One key source a RequestAuthentication rule needs. */
export interface JwksSource {
  readonly issuer: string;
  readonly jwksUri: string | undefined;
  /** Where it comes from, for diagnostics. */
  readonly resource: { readonly kind: string; readonly namespace: string; readonly name: string };
  readonly field: string;
}

export interface JwksResolverOptions {
  /** How often a held key set is fetched again (default 20 minutes, as istiod). */
  readonly refreshMs?: number;
  /** Retry delay after a failed fetch (default 5 s). */
  readonly retryMs?: number;
  /** Per-request timeout (default 5 s). */
  readonly timeoutMs?: number;
  /** Called when a key set appeared or changed (rebuild and push). */
  readonly onChange: () => void;
}

interface Entry {
  source: JwksSource;
  jwks: string | undefined;
  error: string | undefined;
  timer: NodeJS.Timeout | undefined;
  inflight: boolean;
}

function keyOf(issuer: string, jwksUri: string | undefined): string {
  return `${issuer}\0${jwksUri ?? ''}`;
}

/** Fetches, caches and refreshes JWKS documents. */
export class JwksResolver {
  readonly #entries = new Map<string, Entry>();
  readonly #opts: JwksResolverOptions;
  #closed = false;

  constructor(opts: JwksResolverOptions) {
    this.#opts = opts;
  }

  /** The key set for a rule (the JWKS JSON text), undefined while none was fetched successfully. */
  lookup = (issuer: string, jwksUri: string | undefined): string | undefined => this.#entries.get(keyOf(issuer, jwksUri))?.jwks;

  /** Declares the sources the config needs now: new ones are fetched, ones no longer needed dropped. */
  want(sources: readonly JwksSource[]): void {
    if (this.#closed) return;
    const keep = new Set<string>();
    for (const s of sources) {
      const k = keyOf(s.issuer, s.jwksUri);
      keep.add(k);
      const e = this.#entries.get(k);
      if (e !== undefined) {
        e.source = s;
        continue;
      }
      const entry: Entry = { source: s, jwks: undefined, error: undefined, timer: undefined, inflight: false };
      this.#entries.set(k, entry);
      void this.#fetch(entry);
    }
    for (const [k, e] of this.#entries) {
      if (keep.has(k)) continue;
      if (e.timer) clearTimeout(e.timer);
      this.#entries.delete(k);
    }
  }

  /** Current problems (failed or malformed fetches). */
  diagnostics(): Diagnostic[] {
    const out: Diagnostic[] = [];
    for (const e of this.#entries.values()) {
      if (e.error === undefined) continue;
      out.push({
        severity: e.jwks === undefined ? 'error' : 'warning',
        code: 'JWKS_FETCH_FAILED',
        message: `${e.error}; ${e.jwks === undefined ? 'tokens for this issuer are rejected until a fetch succeeds' : 'the last good key set stays in use'}`,
        resource: e.source.resource,
        fieldPath: e.source.field,
      });
    }
    return out;
  }

  /** Resolves once every wanted source has been tried at least once (tests, startup). */
  async settled(timeoutMs = 10_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while ([...this.#entries.values()].some((e) => e.inflight || (e.jwks === undefined && e.error === undefined)) && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  close(): void {
    this.#closed = true;
    for (const e of this.#entries.values()) if (e.timer) clearTimeout(e.timer);
    this.#entries.clear();
  }

  async #get(url: string): Promise<string> {
    const res = await fetch(url, { signal: AbortSignal.timeout(this.#opts.timeoutMs ?? 5000), redirect: 'follow' });
    const text = await res.text();
    if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
    return text;
  }

  async #fetch(e: Entry): Promise<void> {
    if (this.#closed) return;
    e.inflight = true;
    const { issuer, jwksUri } = e.source;
    let uri = jwksUri;
    let ok = false;
    try {
      if (uri === undefined) {
        const discovery = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
        const doc = JSON.parse(await this.#get(discovery)) as { jwks_uri?: unknown };
        if (typeof doc.jwks_uri !== 'string') throw new Error(`${discovery} has no jwks_uri`);
        uri = doc.jwks_uri;
      }
      const text = await this.#get(uri);
      const parsed = parseJwks(text);
      if ('error' in parsed) throw new Error(`JWKS from ${uri} is ${parsed.error}`);
      ok = true;
      e.error = undefined;
      if (text !== e.jwks) {
        e.jwks = text;
        if (!this.#closed && this.#entries.get(keyOf(issuer, jwksUri)) === e) this.#opts.onChange();
      }
    } catch (err) {
      e.error = `fetching keys for issuer '${issuer}'${uri !== undefined ? ` from ${uri}` : ''} failed: ${(err as Error).message}`;
      if (!this.#closed && this.#entries.get(keyOf(issuer, jwksUri)) === e) this.#opts.onChange();
    } finally {
      e.inflight = false;
    }
    if (this.#closed || this.#entries.get(keyOf(issuer, jwksUri)) !== e) return;
    e.timer = setTimeout(() => void this.#fetch(e), ok ? (this.#opts.refreshMs ?? 1_200_000) : (this.#opts.retryMs ?? 5000));
    e.timer.unref();
  }
}
