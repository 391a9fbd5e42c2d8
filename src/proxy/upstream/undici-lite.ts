/**
 * undici's `Pool` without the rest of undici. `import { Pool } from 'undici'` loads the whole
 * package (fetch, WebSocket, EventSource, caches, mock agents, proxies: ~110 modules), which
 * costs a proxy ~12 MB of RSS and ~2.7 MB of live V8 heap (issue 16, bench/README.md "Memory");
 * the upstream pools need only the pool, its clients and the `request` API that undici's index
 * installs on every dispatcher. These two internal files are undici's own building blocks;
 * undici-lite.test.ts checks they are still the ones its index exports, so an upgrade that moves
 * them fails a test instead of a proxy.
 */
import { createRequire } from 'node:module';
import type { Dispatcher, Pool as UndiciPool } from 'undici';

const require = createRequire(import.meta.url);

/** undici's Pool class (lib/dispatcher/pool.js). */
export const Pool = require('undici/lib/dispatcher/pool.js') as typeof UndiciPool;

const api = require('undici/lib/api/index.js') as { request: (this: Dispatcher, opts: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData> };

/** `dispatcher.request(opts)` as undici's index installs it on Dispatcher.prototype. */
export function poolRequest(pool: Dispatcher, opts: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData> {
  return api.request.call(pool, opts);
}

/** For the test: the api module's own request function. */
export const apiRequest = api.request;
