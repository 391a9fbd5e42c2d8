import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { sniffProtocol, type SniffedProtocol } from './sniff.ts';
import { parseClientHello } from './client-hello.ts';

/** Starts a server that sniffs each connection and reports the result plus the bytes that follow. */
async function sniffOnce(client: (port: number) => net.Socket, timeoutMs = 300): Promise<{ result: SniffedProtocol; firstBytes: Buffer }> {
  return new Promise((resolve, reject) => {
    const server = net.createServer(async (socket) => {
      const result = await sniffProtocol(socket, timeoutMs);
      socket.resume();
      socket.once('data', (d: Buffer) => {
        resolve({ result, firstBytes: d });
        socket.destroy();
        server.close();
        c.destroy();
      });
      if (result.transport === 'raw_buffer' && result.application === 'tcp') {
        // Server-speaks-first: after the timeout we talk; the client then answers.
        socket.write('220 hello\r\n');
      }
    });
    let c: net.Socket;
    server.listen(0, '127.0.0.1', () => {
      c = client((server.address() as net.AddressInfo).port);
      c.on('error', () => {});
    });
    server.on('error', reject);
  });
}

test('TLS ClientHello: SNI and ALPN are read and the bytes are left for the consumer', async () => {
  const { result, firstBytes } = await sniffOnce((port) => tls.connect({ port, host: '127.0.0.1', servername: 'reviews.default.svc.cluster.local', ALPNProtocols: ['h2', 'http/1.1'] }));
  assert.deepEqual(result, { transport: 'tls', serverName: 'reviews.default.svc.cluster.local', alpn: ['h2', 'http/1.1'] });
  assert.equal(firstBytes[0], 0x16);
});

test('HTTP/2 prior knowledge and HTTP/1.1 are told apart', async () => {
  const h2 = await sniffOnce((port) => net.connect(port, '127.0.0.1', function (this: net.Socket) { this.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'); }));
  assert.deepEqual(h2.result, { transport: 'raw_buffer', application: 'h2c' });
  assert.equal(h2.firstBytes.toString('latin1', 0, 3), 'PRI');
  // A request split in tiny pieces still sniffs as HTTP/1.1.
  const h1 = await sniffOnce((port) => {
    const s = net.connect(port, '127.0.0.1', () => { s.write('GE'); setTimeout(() => s.write('T / HTTP/1.1\r\nHost: x\r\n\r\n'), 20); });
    return s;
  });
  assert.deepEqual(h1.result, { transport: 'raw_buffer', application: 'http/1.1' });
  assert.equal(h1.firstBytes.toString('latin1', 0, 3), 'GET');
});

test('a silent client is opaque TCP after the bounded wait (server-speaks-first)', async () => {
  const t0 = Date.now();
  const { result, firstBytes } = await sniffOnce((port) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('data', () => s.write('EHLO me\r\n'));
    return s;
  }, 100);
  assert.deepEqual(result, { transport: 'raw_buffer', application: 'tcp' });
  // The client never speaks: only the 100 ms sniff wait ends it (about 10x to spare on a loaded machine).
  assert.ok(Date.now() - t0 < 2000, `opaque after ${Date.now() - t0} ms`);
  assert.equal(firstBytes.toString(), 'EHLO me\r\n');
});

test('binary garbage is TCP; malformed ClientHellos never throw', async () => {
  const { result } = await sniffOnce((port) => net.connect(port, '127.0.0.1', function (this: net.Socket) { this.write(Buffer.from([0x00, 0xff, 0x13, 0x37])); }));
  assert.deepEqual(result, { transport: 'raw_buffer', application: 'tcp' });
  for (let i = 0; i < 500; i++) {
    const len = (i * 7919) % 300;
    const buf = Buffer.alloc(len);
    for (let j = 0; j < len; j++) buf[j] = (i * 31 + j * 17) & 0xff;
    if (len > 0) buf[0] = 0x16;
    if (len > 1) buf[1] = 0x03;
    const r = parseClientHello(buf);
    assert.ok(['incomplete', 'invalid', 'hello'].includes(r.kind));
  }
});

test('a plaintext HTTP chain does not wait on TLS-looking bytes as a ClientHello (detectTls false)', { timeout: 20_000 }, async () => {
  const result = await new Promise<SniffedProtocol>((resolve) => {
    const server = net.createServer(async (socket) => {
      resolve(await sniffProtocol(socket, 600_000, false));
      socket.destroy();
      server.close();
    });
    server.listen(0, '127.0.0.1', () => {
      const c = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1', () => c.write('\x16\x03\x01\r\nHost: x\r\n\r\n'));
      c.on('error', () => {});
    });
  });
  // Decided from the bytes as not HTTP (the HTTP/1.1 codec then answers 400); waiting out the
  // 600 s sniff timeout would fail the test by its own timeout.
  assert.deepEqual(result, { transport: 'raw_buffer', application: 'tcp' });
});
