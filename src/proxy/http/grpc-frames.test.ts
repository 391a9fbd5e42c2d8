import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GrpcFrameCounter } from './grpc-frames.ts';

function frame(payload: number): Buffer {
  const b = Buffer.alloc(5 + payload, 7);
  b[0] = 0;
  b.writeUInt32BE(payload, 1);
  return b;
}

test('gRPC frames are counted across any chunking, empty messages included', () => {
  const body = Buffer.concat([frame(3), frame(0), frame(300), frame(70000)]);
  for (const size of [1, 2, 5, 6, 64, body.length]) {
    const c = new GrpcFrameCounter();
    let n = 0;
    for (let i = 0; i < body.length; i += size) n += c.push(body.subarray(i, i + size));
    assert.equal(n, 4, `chunks of ${size}`);
  }
});
