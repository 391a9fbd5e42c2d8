// A test that fails before its cleanup, leaving a server open: without the watchdog
// (scripts/test-watchdog.ts) this file's process, and the whole run, would never end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';

test('fails with a server still listening', async () => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  assert.equal(1, 2, 'the failure that skips the cleanup');
  server.close();
});
