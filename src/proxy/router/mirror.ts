/**
 * Request mirroring (RouteAction.request_mirror_policies): a fire-and-forget copy of the request
 * to the mirror cluster, with the authority suffixed `-shadow` (before any port, as Envoy does),
 * sampled by runtime_fraction. The mirror's response is read and dropped; its failures are
 * ignored; it never delays or affects the main request. It is cancelled after the route timeout.
 */
import { CancelToken, type UpstreamRequestInit } from '../upstream/types.ts';
import type { FilterFactoryContext } from '../http/stream.ts';
import type { MirrorPolicy } from './route-action.ts';
import type { ReplayableBody } from './request-body.ts';

/** `host:port` -> `host-shadow:port`. */
export function shadowAuthority(authority: string): string {
  const c = authority.lastIndexOf(':');
  if (c > 0 && !authority.endsWith(']') && authority.indexOf(':') === c) return `${authority.slice(0, c)}-shadow${authority.slice(c)}`;
  return `${authority}-shadow`;
}

/** Start the sampled mirrors of a request. Never throws. */
export function fireMirrors(
  ctx: FilterFactoryContext, mirrors: readonly MirrorPolicy[], base: Omit<UpstreamRequestInit, 'cancel' | 'body' | 'isRetry'>,
  body: ReplayableBody, timeoutMs: number,
): void {
  for (const m of mirrors) {
    if (!(ctx.random() < m.fraction)) continue;
    const cluster = ctx.clusterManager.get(m.cluster);
    if (!cluster) continue;
    const cancel = new CancelToken();
    const timer = setTimeout(() => cancel.cancel(), timeoutMs > 0 ? timeoutMs : 60_000);
    timer.unref();
    let b: AsyncIterable<Uint8Array> | null;
    try {
      b = body.open();
    } catch {
      clearTimeout(timer);
      continue;
    }
    const init: UpstreamRequestInit = { ...base, headers: { ...base.headers }, authority: shadowAuthority(base.authority), body: b, cancel, isRetry: false };
    void (async () => {
      try {
        const res = await cluster.request(init);
        for await (const _ of res.body) { /* drain and drop */ }
      } catch {
        // Mirrors are best effort.
      } finally {
        clearTimeout(timer);
      }
    })();
  }
}
