import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { apiRequest, Pool, poolRequest } from './undici-lite.ts';

test('undici-lite loads the same Pool class and request function undici exports', async () => {
  const undici = await import('undici');
  assert.equal(Pool, undici.Pool);
  assert.equal(apiRequest, undici.Pool.prototype.request, 'the request API undici installs on Dispatcher.prototype');
});

test('undici-lite: a request through a Pool', async () => {
  const server = createServer((req, res) => res.end(`hello ${req.url}`));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 1 });
  try {
    const res = await poolRequest(pool, { path: '/x', method: 'GET' });
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'hello /x');
  } finally {
    await pool.close();
    server.close();
  }
});
