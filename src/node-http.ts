/**
 * `node:http`, loaded with `require` instead of an ESM `import`. Importing a built-in module as
 * ESM reads every export to build its namespace, and `node:http`'s exports include lazy getters
 * (`WebSocket`, `CloseEvent`, `MessageEvent`) that load Node's bundled undici: ~760 KB of source
 * kept on the heap plus its compiled code, +14 MB RSS in every process that imports `node:http`
 * that way, though nothing here uses them (Node 24; `node -e "import('node:http')"` vs
 * `require('node:http')`, after `gc()`). Import `http` from here; `import type` from `node:http`
 * stays fine (erased at compile time).
 */
import { createRequire } from 'node:module';

const http = createRequire(import.meta.url)('node:http') as typeof import('node:http');

export default http;
