import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { test } from 'node:test';
import { FrameReader, FrameType, Flag, headerFragment, headers, PREFACE, settings, type Frame } from './h2-frames.ts';
import { encodeBlock, HpackDecoder, HpackError, huffmanDecode, huffmanEncode, literalBlock } from './hpack.ts';

const PRINTABLE = Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i)).join('') + '\t';

test('Huffman round-trips every byte; bad padding and EOS are errors', () => {
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  assert.deepEqual(huffmanDecode(huffmanEncode(all)), all);
  // RFC 7541 C.4.1: "www.example.com".
  assert.equal(huffmanEncode(Buffer.from('www.example.com')).toString('hex'), 'f1e3c2e5f23a6ba0ab90f4ff');
  assert.throws(() => huffmanDecode(Buffer.from([0x00])), HpackError); // '0' then 3 zero bits of padding
  assert.throws(() => huffmanDecode(Buffer.from([0xff, 0xff, 0xff, 0xff])), HpackError); // EOS
});

/** Sends one request of raw frames to `port` and returns the decoded response header blocks. */
async function exchange(port: number, block: Buffer): Promise<[string, string][][]> {
  const sock = net.connect(port, '127.0.0.1');
  const reader = new FrameReader();
  const dec = new HpackDecoder();
  const blocks: [string, string][][] = [];
  sock.write(Buffer.concat([PREFACE, settings([]), headers(1, block, { endStream: true })]));
  await new Promise<void>((resolve, reject) => {
    sock.on('data', (c: Buffer) => {
      for (const f of reader.push(c) as Frame[]) {
        if (f.type === FrameType.HEADERS) blocks.push(dec.decode(headerFragment(f)));
        if ((f.type === FrameType.DATA || f.type === FrameType.HEADERS) && f.flags & Flag.END_STREAM) resolve();
        if (f.type === FrameType.RST_STREAM || f.type === FrameType.GOAWAY) reject(new Error(`frame ${f.type}`));
      }
    });
    sock.on('error', reject);
  });
  sock.destroy();
  return blocks;
}

test('decodes what nghttp2 encodes, and nghttp2 decodes what we encode (Huffman, indexing)', async (t) => {
  let seen: Record<string, string | string[] | undefined> = {};
  const server = http2.createServer((req, res) => {
    seen = req.headers;
    res.setHeader('x-printable', PRINTABLE.trim());
    res.setHeader('x-digits', '0123456789'); // Huffman-coded by nghttp2 (shorter)
    res.setHeader('x-repeat', 'same-value');
    res.setHeader('set-cookie', ['a=1', 'b=2']);
    res.writeHead(403);
    res.end('no');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const port = (server.address() as net.AddressInfo).port;

  const high = Buffer.from(Array.from({ length: 128 }, (_, i) => 0x80 + i)).toString('latin1');
  const block = encodeBlock([
    { kind: 'indexed', index: 2 }, // :method GET
    { kind: 'indexed', index: 6 }, // :scheme http
    { kind: 'name-ref', nameIndex: 4, value: '/a/b?c=d', huffman: true },
    { kind: 'literal', name: ':authority', value: 'example.com', huffman: true, index: 'incremental' },
    { kind: 'literal', name: 'x-printable', value: PRINTABLE.trim(), huffman: true, index: 'never' },
    { kind: 'literal', name: 'x-high', value: `a${high}z`, huffman: true },
  ]);
  const first = await exchange(port, block);
  assert.equal(seen[':path'], '/a/b?c=d');
  assert.equal(seen[':authority'], 'example.com');
  assert.equal(seen['x-printable'], PRINTABLE.trim());
  assert.equal(seen['x-high'], `a${high}z`); // node hands header bytes over as latin1
  const h = Object.fromEntries(first[0].filter(([n]) => n !== 'set-cookie'));
  assert.equal(h[':status'], '403');
  assert.equal(h['x-printable'], PRINTABLE.trim());
  assert.equal(h['x-digits'], '0123456789');
  assert.deepEqual(first[0].filter(([n]) => n === 'set-cookie').map(([, v]) => v), ['a=1', 'b=2']);

  const again = await exchange(port, literalBlock([[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'x']]));
  assert.equal(Object.fromEntries(again[0])[':status'], '403');
});
