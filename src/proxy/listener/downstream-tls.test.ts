import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { parseDownstreamTransportSocket, DownstreamTlsContextType, terminateTls } from './downstream-tls.ts';
import { sniffProtocol } from './sniff.ts';
import { noSecrets } from '../tls/secret-provider.ts';
import { testCa } from '../../../test/support/test-pki.ts';

test('a sniffed TLS connection, its ClientHello split over two TCP segments, is terminated on the native socket', async (t) => {
  const ca = await testCa();
  t.after(() => rmSync(ca.dir, { recursive: true, force: true }));
  const server = await ca.leaf('backend', ['backend.local']);
  const cfg = parseDownstreamTransportSocket({
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': DownstreamTlsContextType,
      common_tls_context: { tls_certificates: [{ certificate_chain: { inline_string: server.cert }, private_key: { inline_string: server.key } }], alpn_protocols: ['h2', 'http/1.1'] },
    },
  }, 'test')!;

  const served: Array<{ sni: string; alpn: string | false | null; native: boolean; remote: string | undefined }> = [];
  const listener = net.createServer({ pauseOnConnect: true }, (socket) => {
    void (async () => {
      const sniffed = await sniffProtocol(socket, 1000);
      assert.equal(sniffed.transport, 'tls');
      const s = await terminateTls(socket, cfg, noSecrets);
      // The TLS socket wraps the accepted TCP socket itself (its native handle), not a JS stream over it.
      served.push({ sni: sniffed.transport === 'tls' ? sniffed.serverName : '', alpn: s.alpnProtocol, native: (s as unknown as { _parent?: unknown })._parent === socket, remote: s.remoteAddress });
      s.end('hello over tls');
    })().catch((err: unknown) => { socket.destroy(); served.push({ sni: String(err), alpn: false, native: false, remote: undefined }); });
  });
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  // A relay that sends the client's first bytes in two segments 20 ms apart: the sniffer must wait for the whole ClientHello.
  const relay = net.createServer((client) => {
    const upstream = net.connect((listener.address() as AddressInfo).port, '127.0.0.1');
    let first = true;
    client.on('data', (d: Buffer) => {
      if (!first) { upstream.write(d); return; }
      first = false;
      client.pause();
      upstream.write(d.subarray(0, 7));
      setTimeout(() => { upstream.write(d.subarray(7)); client.resume(); }, 20);
    });
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  relay.listen(0, '127.0.0.1');
  await once(relay, 'listening');
  t.after(() => { listener.close(); relay.close(); });

  const body = await new Promise<string>((resolve, reject) => {
    const c = tls.connect({ port: (relay.address() as AddressInfo).port, host: '127.0.0.1', servername: 'backend.local', ca: ca.cert, ALPNProtocols: ['h2'] });
    let b = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => { b += d; });
    c.on('end', () => resolve(b));
    c.on('error', reject);
  });
  assert.equal(body, 'hello over tls');
  assert.deepEqual(served, [{ sni: 'backend.local', alpn: 'h2', native: true, remote: '127.0.0.1' }]);
});
