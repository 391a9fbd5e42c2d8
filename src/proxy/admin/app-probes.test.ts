import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseAppProbes, runAppProbe } from './app-probes.ts';

test('app probes: parsed from the injector JSON; bad input names the path and field', () => {
  const m = parseAppProbes('{"/app-health/web/readyz":{"httpGet":{"path":"/ok","port":8080,"scheme":"HTTP"},"timeoutSeconds":2}}');
  assert.equal(m.get('/app-health/web/readyz')?.httpGet.port, 8080);
  assert.throws(() => parseAppProbes('[]'), /JSON object/);
  assert.throws(() => parseAppProbes('{"/x":{"httpGet":{"port":1}}}'), /must start with \/app-health\//);
  assert.throws(() => parseAppProbes('{"/app-health/a/livez":{"httpGet":{"port":"http"}}}'), /httpGet.port/);
});

test('app probes: the application status code is answered; unreachable or slow is 503', async () => {
  const server = http.createServer((req, res) => {
    if (req.url === '/slow') return void setTimeout(() => res.end('late'), 2000);
    res.writeHead(req.url === '/ok' ? 200 : 500);
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    assert.equal(await runAppProbe({ httpGet: { path: '/ok', port } }), 200);
    assert.equal(await runAppProbe({ httpGet: { path: '/bad', port } }), 500);
    assert.equal(await runAppProbe({ httpGet: { path: '/slow', port }, timeoutSeconds: 0.2 }), 503);
    server.closeAllConnections();
  } finally {
    server.close();
  }
  assert.equal(await runAppProbe({ httpGet: { path: '/', port } }), 503);
});
