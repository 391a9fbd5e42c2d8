import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { ReplayableBody } from './request-body.ts';

async function collect(it: AsyncIterable<Uint8Array> | null): Promise<string> {
  if (!it) return '<null>';
  let s = '';
  for await (const c of it) s += Buffer.from(c).toString();
  return s;
}

test('a body within the limit replays to every reader, including concurrent ones', async () => {
  const b = new ReplayableBody(Readable.from([Buffer.from('ab'), Buffer.from('cd')]), 100);
  const [x, y] = await Promise.all([collect(b.open()), collect(b.open())]);
  assert.deepEqual([x, y], ['abcd', 'abcd']);
  assert.equal(await collect(b.open()), 'abcd');
  assert.equal(b.replayable, true);
});

test('past the limit the first reader still gets everything, replay is refused', async () => {
  const b = new ReplayableBody(Readable.from([Buffer.from('aaaa'), Buffer.from('bbbb'), Buffer.from('cccc')]), 5);
  assert.equal(await collect(b.open()), 'aaaabbbbcccc');
  assert.equal(b.replayable, false);
  assert.throws(() => b.open());
});

test('no body is null; a source error reaches the reader', async () => {
  assert.equal(new ReplayableBody(null, 10).open(), null);
  const failing = new Readable({ read() { this.destroy(new Error('boom')); } });
  await assert.rejects(collect(new ReplayableBody(failing, 10).open()), /boom/);
});
