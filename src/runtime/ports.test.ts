import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocatePorts } from './ports.ts';

test('allocatePorts never hands out a port twice in one process, even when the kernel would reuse it', async () => {
  const seen = new Set<number>();
  for (let i = 0; i < 40; i++) {
    const batch = await allocatePorts(5);
    assert.equal(new Set(batch).size, 5);
    for (const p of batch) {
      assert.ok(!seen.has(p), `port ${p} handed out twice`);
      seen.add(p);
    }
  }
});
