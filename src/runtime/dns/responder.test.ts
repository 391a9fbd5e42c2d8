import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { startDnsResponder, type DnsResponder } from './responder.ts';
import { parseQuery } from './wire.ts';

let dns: DnsResponder;
const seen: string[] = [];
before(async () => {
  dns = await startDnsResponder({
    host: '127.0.0.1',
    port: 0,
    resolve: (name, client) => {
      seen.push(`${client} ${name}`);
      if (name === 'boom.default.svc.cluster.local') throw new Error('resolver bug');
      if (name === 'reviews.default.svc.cluster.local') return ['240.240.1.2'];
      if (name === 'headless.default.svc.cluster.local') return [];
      return undefined;
    },
  });
});
after(() => dns.close());

function query(name: string, qtype = 1, id = 0x1234): Buffer {
  const parts = name.split('.').filter(Boolean).map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')]));
  const head = Buffer.from([id >> 8, id & 255, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  const tail = Buffer.from([0, qtype >> 8, qtype & 255, 0, 1]);
  return Buffer.concat([head, ...parts, tail]);
}

/** Sends `msg`, resolves with the reply or undefined after `ms`. */
function ask(msg: Buffer, ms = 1000): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      resolve(undefined);
    }, ms);
    s.once('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(m);
    });
    s.send(msg, dns.port, '127.0.0.1');
  });
}

function decode(m: Buffer) {
  const flags = m.readUInt16BE(2);
  const an = m.readUInt16BE(6);
  const q = parseQuery(Buffer.concat([m.subarray(0, 2), Buffer.from([1, 0]), m.subarray(4)]))!; // re-parse the echoed question
  let off = 12 + q.question.length;
  const ips: string[] = [];
  for (let i = 0; i < an; i++) {
    assert.equal(m.readUInt16BE(off), 0xc00c);
    assert.equal(m.readUInt16BE(off + 2), 1);
    assert.equal(m.readUInt16BE(off + 10), 4);
    ips.push([...m.subarray(off + 12, off + 16)].join('.'));
    off += 16;
  }
  return { id: m.readUInt16BE(0), qr: flags >> 15, aa: (flags >> 10) & 1, rcode: flags & 0xf, name: q.name, ips };
}

test('A query for a known name answers its address (id, question echoed, authoritative)', async () => {
  const r = decode((await ask(query('Reviews.Default.svc.cluster.local', 1, 0xbeef)))!);
  assert.deepEqual(r, { id: 0xbeef, qr: 1, aa: 1, rcode: 0, name: 'reviews.default.svc.cluster.local', ips: ['240.240.1.2'] });
  assert.ok(seen.includes('127.0.0.1 reviews.default.svc.cluster.local'), 'resolve sees the lower-cased name and the client address');
});

test('unknown name: NXDOMAIN; known name asked for AAAA or with no address: NOERROR without answers', async () => {
  assert.deepEqual(decode((await ask(query('nope.example.com')))!).rcode, 3);
  const aaaa = decode((await ask(query('reviews.default.svc.cluster.local', 28)))!);
  assert.equal(aaaa.rcode, 0);
  assert.deepEqual(aaaa.ips, []);
  const headless = decode((await ask(query('headless.default.svc.cluster.local')))!);
  assert.equal(headless.rcode, 0);
  assert.deepEqual(headless.ips, []);
});

test('a resolver error answers SERVFAIL and the responder keeps serving', async () => {
  assert.equal(decode((await ask(query('boom.default.svc.cluster.local')))!).rcode, 2);
  assert.equal(decode((await ask(query('reviews.default.svc.cluster.local')))!).rcode, 0);
});

test('malformed packets are dropped without an answer, and the responder keeps serving', async () => {
  const good = query('reviews.default.svc.cluster.local');
  const bad: Buffer[] = [
    Buffer.alloc(0),
    Buffer.from([1, 2, 3]),
    good.subarray(0, 20), // truncated name
    good.subarray(0, good.length - 2), // truncated type/class
    Buffer.concat([good.subarray(0, 2), Buffer.from([0x81, 0x00]), good.subarray(4)]), // a response, not a query
    Buffer.concat([good.subarray(0, 4), Buffer.from([0, 2]), good.subarray(6)]), // two questions claimed
    Buffer.concat([good.subarray(0, 12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]), // compression pointer in the question
    Buffer.concat([good.subarray(0, 12), Buffer.from([64]), Buffer.alloc(64, 97), Buffer.from([0, 0, 1, 0, 1])]), // label > 63
    Buffer.alloc(5000, 7), // oversized
  ];
  const before = dns.stats.dropped;
  const answers = await Promise.all(bad.map((b) => ask(b, 300)));
  assert.deepEqual(answers.map((a) => a === undefined), bad.map(() => true));
  assert.equal(dns.stats.dropped - before, bad.length);
  assert.equal(decode((await ask(good))!).ips[0], '240.240.1.2');
});
