import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);

test('a worker dying of an uncaught error: the primary logs the error and restarts it with growing delays', { timeout: 60_000 }, async () => {
  const script = fileURLToPath(new URL('./workers-fatal.test-support.ts', import.meta.url));
  const { stdout } = await run(process.execPath, [script], { env: { ...process.env, CRASHES: '3' }, timeout: 50_000 });
  const died = stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string; error?: string; restartInMs?: number }).filter((l) => l.msg.startsWith('proxy worker died'));
  assert.equal(died.length, 3, stdout);
  for (const d of died) {
    assert.match(d.msg, /boom from a worker/);
    assert.match(d.error ?? '', /Error: boom from a worker\n\s+at /, 'the stack goes with it');
  }
  assert.deepEqual(died.map((d) => d.restartInMs), [0, 250, 500]);
});
