import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeMessage } from '../xds/codec.ts';
import { decodePeerExchangePayload, encodePeerExchange, MaxPeerExchangePayload, PeerExchangeReader, type PeerExchangeStep } from './peer-exchange.ts';
import { PeerDecoder } from './peer-metadata.ts';

const meta = { NAME: 'db-0', WORKLOAD_NAME: 'db', NAMESPACE: 'data', LABELS: { app: 'db', version: 'v2' }, CLUSTER_ID: 'Kubernetes', SERVICE_ACCOUNT: 'db', TRELLIS_PROXY_KIND: 'sidecar' };

test('the prefix is Istio wire format: magic and length big-endian, then Any{type_url Struct, value}', () => {
  const prefix = encodePeerExchange(meta, 'sidecar~10.0.0.1~db-0.data~data.svc.cluster.local');
  assert.deepEqual([...prefix.subarray(0, 4)], [0x3d, 0x23, 0x04, 0x67]);
  assert.equal(prefix.readUInt32BE(4), prefix.length - 8);
  // Any field 1 (type_url, length-delimited) then field 2 (value), read by hand.
  const any = prefix.subarray(8);
  assert.equal(any[0], 0x0a);
  const urlLen = any[1];
  assert.equal(any.subarray(2, 2 + urlLen).toString(), 'type.googleapis.com/google.protobuf.Struct');
  assert.equal(any[2 + urlLen], 0x12);
  const outer = decodeMessage('google.protobuf.Struct', decodeStructBytes(any.subarray(3 + urlLen)));
  assert.equal(outer['x-envoy-peer-metadata-id'], 'sidecar~10.0.0.1~db-0.data~data.svc.cluster.local');
  const md = outer['x-envoy-peer-metadata'] as Record<string, unknown>;
  assert.deepEqual(md, { NAME: 'db-0', WORKLOAD_NAME: 'db', NAMESPACE: 'data', LABELS: { app: 'db', version: 'v2' }, CLUSTER_ID: 'Kubernetes', SERVICE_ACCOUNT: 'db' });
});

/** The value bytes after a length-delimited field's tag: a varint length, then the bytes. */
function decodeStructBytes(b: Buffer): Buffer {
  let len = 0;
  let shift = 0;
  let i = 0;
  for (;;) {
    const byte = b[i++];
    len |= (byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) break;
    shift += 7;
  }
  return b.subarray(i, i + len);
}

test('round trip: the reader strips the prefix and hands back the application bytes after it', () => {
  const prefix = encodePeerExchange(meta, 'node-1');
  const app = Buffer.from('hello after the prefix');
  const step = new PeerExchangeReader().push(Buffer.concat([prefix, app]));
  assert.equal(step.state, 'done');
  if (step.state !== 'done') return;
  assert.deepEqual(step.rest, app);
  const data = decodePeerExchangePayload(step.payload);
  assert.equal(data.id, 'node-1');
  assert.equal(data.metadata?.WORKLOAD_NAME, 'db');
  // Through the peer cache: the same labels the HTTP exchange would give.
  const peer = new PeerDecoder().lookup(step.payload.toString('latin1'), () => decodePeerExchangePayload(step.payload).metadata);
  assert.deepEqual([peer.labels.workload, peer.labels.namespace, peer.labels.app, peer.labels.version], ['db', 'data', 'db', 'v2']);
});

test('partial reads: any split of the prefix (one byte at a time too) gives the same result', () => {
  const prefix = encodePeerExchange(meta, 'node-1');
  const all = Buffer.concat([prefix, Buffer.from('xyz')]);
  for (const sizes of [[1], [3], [4], [7], [8], [9], [prefix.length], [prefix.length + 1]]) {
    const r = new PeerExchangeReader();
    let step: PeerExchangeStep = { state: 'more' };
    let off = 0;
    while (step.state === 'more' && off < all.length) {
      const n = sizes[0];
      step = r.push(all.subarray(off, off + n));
      off += n;
    }
    assert.equal(step.state, 'done', `chunks of ${sizes[0]}`);
    if (step.state !== 'done') continue;
    assert.deepEqual(Buffer.concat([step.rest, all.subarray(off)]).toString(), 'xyz', `chunks of ${sizes[0]}`);
    assert.equal(decodePeerExchangePayload(step.payload).metadata?.NAMESPACE, 'data');
  }
});

test('a bad magic means no exchange: every byte goes to the application untouched', () => {
  const app = Buffer.from('GET / HTTP/1.1\r\n\r\n');
  assert.deepEqual(new PeerExchangeReader().push(app), { state: 'none', bytes: app });
  // Wrong from the first byte: decided without waiting for four.
  assert.deepEqual(new PeerExchangeReader().push(Buffer.from('G')), { state: 'none', bytes: Buffer.from('G') });
  // Three bytes of the magic then a wrong one, split.
  const r = new PeerExchangeReader();
  assert.equal(r.push(Buffer.from([0x3d, 0x23])).state, 'more');
  assert.deepEqual(r.push(Buffer.from([0x04, 0x00, 0x01])), { state: 'none', bytes: Buffer.from([0x3d, 0x23, 0x04, 0x00, 0x01]) });
});

test('an announced length over the bound means no exchange; a stream that ends early keeps only bytes that were never a prefix', () => {
  const big = Buffer.alloc(8);
  big.writeUInt32BE(0x3d230467, 0);
  big.writeUInt32BE(MaxPeerExchangePayload + 1, 4);
  assert.equal(new PeerExchangeReader().push(big).state, 'none');
  const short = new PeerExchangeReader();
  assert.equal(short.push(Buffer.from([0x3d, 0x23])).state, 'more');
  assert.deepEqual(short.end(), Buffer.from([0x3d, 0x23]));
  const truncated = new PeerExchangeReader();
  assert.equal(truncated.push(encodePeerExchange(meta, 'n').subarray(0, 20)).state, 'more');
  assert.equal(truncated.end().length, 0);
});

test('a payload that is not an Any of a Struct is rejected by the decoder (the peer stays unknown)', () => {
  assert.throws(() => decodePeerExchangePayload(Buffer.from([0x0a, 0x03, 0x61, 0x62, 0x63])));
  assert.throws(() => decodePeerExchangePayload(Buffer.from([0xff, 0xff, 0xff])));
  const peer = new PeerDecoder().lookup('junk', () => decodePeerExchangePayload(Buffer.from([0xff, 0xff])).metadata);
  assert.equal(peer.id, 0);
});
