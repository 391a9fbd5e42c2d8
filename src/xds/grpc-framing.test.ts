import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { frameMessage, installFramedPassthrough, kFramed } from './grpc-framing.ts';

test('the pass-through installs on the grpc-js we ship (an upgrade that moves serializeMessage fails here)', () => {
  assert.equal(installFramedPassthrough(), true);
  assert.equal(installFramedPassthrough(), true, 'idempotent');
  const require = createRequire(import.meta.url);
  const { BaseServerInterceptingCall } = require('@grpc/grpc-js/build/src/server-interceptors.js');
  const call = Object.create(BaseServerInterceptingCall.prototype);
  call.handler = { serialize: (v: { text: string }) => Buffer.from(v.text) };
  const framed = frameMessage(Buffer.from('abc'));
  assert.equal(call.serializeMessage({ [kFramed]: framed }), framed, 'pre-framed bytes pass through, no copy');
  assert.deepEqual([...call.serializeMessage({ text: 'hi' })], [0, 0, 0, 0, 2, 0x68, 0x69], 'other messages framed by grpc-js');
});

test('frameMessage: flag 0, big-endian length, the bytes', () => {
  assert.deepEqual([...frameMessage(new Uint8Array([7, 8]))], [0, 0, 0, 0, 2, 7, 8]);
  assert.equal(frameMessage(new Uint8Array(70000)).readUInt32BE(1), 70000);
});
