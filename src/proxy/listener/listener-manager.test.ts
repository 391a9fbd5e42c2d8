import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListenerManager } from './listener-manager.ts';
import type { ClusterManager, ClusterHandle } from '../upstream/types.ts';
import { noSecrets } from '../tls/secret-provider.ts';
import { skipUnlessTools } from '../../../test/support/skip.ts';

/** Connects cluster names to fixed local ports: the smallest real connector the listener layer needs. */
function portClusters(ports: Record<string, number>): ClusterManager {
  return {
    get(name) {
      const port = ports[name];
      if (port === undefined) return undefined;
      const handle: ClusterHandle = {
        name,
        request: () => Promise.reject(new Error('not used')),
        connect: () =>
          new Promise((resolve, reject) => {
            const s = net.connect(port, '127.0.0.1', () => resolve({ socket: s, endpoint: `127.0.0.1:${port}` }));
            s.once('error', reject);
          }),
        tryAcquireRetry: () => true,
        releaseRetry: () => {},
      };
      return handle;
    },
  };
}

const servers: net.Server[] = [];
const sockets = new Set<net.Socket>();
const managers: ListenerManager[] = [];
after(async () => {
  // A test that failed half-way must not leave its listeners open (the file would never exit).
  await Promise.all(managers.map((m) => m.drainAll(0).catch(() => {})));
  servers.forEach((s) => s.close());
  sockets.forEach((s) => s.destroy());
});

/** A ListenerManager closed after the file's tests, whatever happened in them. */
function manager(opts: ConstructorParameters<typeof ListenerManager>[0]): ListenerManager {
  // A loaded machine may take longer than the 100 ms default to deliver a ClientHello.
  const m = new ListenerManager({ sniffTimeoutMs: 5000, ...opts });
  managers.push(m);
  return m;
}

/** A TCP server that answers every chunk with `<tag>:<chunk>`. */
async function tagServer(tag: string): Promise<number> {
  const s = net.createServer((c) => sockets.add(c) && c.on('data', (d) => c.write(`${tag}:${d}`)).on('error', () => {}));
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as net.AddressInfo).port;
}

async function tlsTagServer(tag: string, key: string, cert: string): Promise<number> {
  const s = tls.createServer({ key, cert }, (c) => sockets.add(c) && c.on('data', (d) => c.write(`${tag}:${d}`)).on('error', () => {}));
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as net.AddressInfo).port;
}

function say(port: number, msg: string, opts?: { tls?: tls.ConnectionOptions }): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = opts?.tls ? tls.connect({ port, host: '127.0.0.1', ...opts.tls }) : net.connect(port, '127.0.0.1');
    sock.once(opts?.tls ? 'secureConnect' : 'connect', () => sock.write(msg));
    sock.once('data', (d) => {
      resolve(d.toString());
      sock.destroy();
    });
    sock.once('error', reject);
  });
}

const hcmFactory = () => {
  throw new Error('no HTTP in these tests');
};

function tcpListener(name: string, port: number, chains: unknown[], extra: Record<string, unknown> = {}) {
  return { name, address: { socket_address: { address: '127.0.0.1', port_value: port } }, filter_chains: chains, ...extra };
}

function tcpChain(cluster: string, match?: unknown, transportSocket?: unknown) {
  return {
    ...(match ? { filter_chain_match: match } : {}),
    ...(transportSocket ? { transport_socket: transportSocket } : {}),
    filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', stat_prefix: 'x', cluster } }],
  };
}

test('TCP proxy chain, update to another cluster, invalid update keeps the old config, removal closes the port', async () => {
  const a = await tagServer('a');
  const b = await tagServer('b');
  const lm = manager({ clusters: portClusters({ ca: a, cb: b }), secrets: noSecrets, hcmFactory });
  await lm.apply(new Map([['l1', tcpListener('l1', 0, [tcpChain('ca')])]]));
  const port = lm.boundPort('l1')!;
  assert.equal(await say(port, 'hi'), 'a:hi');

  // Keep a connection open across the change: it stays on the old chain until it closes.
  const held = net.connect(port, '127.0.0.1');
  await new Promise((r) => held.once('connect', r));
  held.write('x');
  await new Promise((r) => held.once('data', r));

  await lm.apply(new Map([['l1', tcpListener('l1', 0, [tcpChain('cb')])]]));
  assert.equal(lm.boundPort('l1'), port);
  assert.equal(await say(port, 'hi'), 'b:hi');
  held.write('y');
  assert.equal(String(await new Promise((r) => held.once('data', r))), 'a:y');
  held.destroy();

  await assert.rejects(lm.apply(new Map([['l1', tcpListener('l1', 0, [{ filters: [{ name: 'bogus', typed_config: { '@type': 'type.googleapis.com/x.Y' } }] }])]])), /unsupported network filter 'bogus'/);
  assert.equal(await say(port, 'still'), 'b:still');

  await lm.apply(new Map());
  await assert.rejects(say(port, 'gone'));
  await lm.drainAll(100);
});

test('a port already in use rejects the update and binds nothing', async () => {
  const blocker = net.createServer();
  servers.push(blocker);
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const taken = (blocker.address() as net.AddressInfo).port;
  const a = await tagServer('a');
  const lm = manager({ clusters: portClusters({ ca: a }), secrets: noSecrets, hcmFactory });
  await assert.rejects(
    lm.apply(new Map([['ok', tcpListener('ok', 0, [tcpChain('ca')])], ['bad', tcpListener('bad', taken, [tcpChain('ca')])]])),
    (err: Error & { code?: string }) => err.code === 'LISTENER_BIND' && err.message.includes(String(taken)),
  );
  assert.deepEqual(lm.list(), []);
  await lm.drainAll(100);
});

test('unknown cluster closes the connection; the listener keeps serving', async () => {
  const a = await tagServer('a');
  const lm = manager({ clusters: portClusters({ ca: a }), secrets: noSecrets, hcmFactory });
  await lm.apply(new Map([['l', tcpListener('l', 0, [tcpChain('missing', { destination_port: 1 }), tcpChain('ca')])]]));
  const port = lm.boundPort('l')!;
  assert.equal(await say(port, 'ok'), 'a:ok');
  await lm.drainAll(100);
});

test('TLS passthrough by SNI and TLS termination', { skip: skipUnlessTools('openssl') }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-lm-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=test', '-addext', 'subjectAltName=DNS:a.example.com,DNS:b.example.com,DNS:term.example.com', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    const key = readFileSync(join(dir, 'key.pem'), 'utf8');
    const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    const ta = await tlsTagServer('A', key, cert);
    const tb = await tlsTagServer('B', key, cert);
    const plain = await tagServer('plain');
    const lm = manager({ clusters: portClusters({ ta, tb, plain }), secrets: noSecrets, hcmFactory });
    const terminate = {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
        common_tls_context: { tls_certificates: [{ certificate_chain: { filename: join(dir, 'cert.pem') }, private_key: { filename: join(dir, 'key.pem') } }] },
      },
    };
    await lm.apply(new Map([['gw', tcpListener('gw', 0, [
      tcpChain('ta', { server_names: ['a.example.com'], transport_protocol: 'tls' }),
      tcpChain('tb', { server_names: ['*.example.com'], transport_protocol: 'tls' }),
      tcpChain('plain', { server_names: ['term.example.com'], transport_protocol: 'tls' }, terminate),
    ], { listener_filters: [{ name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector' } }] })]]));
    const port = lm.boundPort('gw')!;
    const ca = { ca: cert, rejectUnauthorized: true };
    assert.equal(await say(port, 'x', { tls: { servername: 'a.example.com', ...ca } }), 'A:x');
    assert.equal(await say(port, 'y', { tls: { servername: 'b.example.com', ...ca } }), 'B:y');
    // Terminated at the proxy: the backend sees plaintext.
    assert.equal(await say(port, 'z', { tls: { servername: 'term.example.com', ...ca } }), 'plain:z');
    // No SNI: no chain matches; the connection is closed, the listener survives.
    await assert.rejects(say(port, 'n', { tls: { ...ca, servername: '' } }));
    // Every chain wants TLS: a client slow to send its ClientHello (a loaded machine) is waited
    // for, as Envoy's tls_inspector does, instead of being taken for silent plaintext after 100 ms.
    const slow = await new Promise<string>((resolve, reject) => {
      const raw = net.connect(port, '127.0.0.1', () => setTimeout(() => {
        const t = tls.connect({ socket: raw, servername: 'a.example.com', ...ca }, () => t.write('slow'));
        t.once('data', (d) => { resolve(d.toString()); t.destroy(); });
        t.once('error', reject);
        t.once('close', () => reject(new Error('closed before an answer')));
      }, 400));
      raw.once('error', reject);
      raw.once('close', () => reject(new Error('the proxy closed the connection while the client was still silent')));
    });
    assert.equal(slow, 'A:slow');
    assert.equal(await say(port, 'again', { tls: { servername: 'a.example.com', ...ca } }), 'A:again');
    await lm.drainAll(100);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('transparent capture: a use_original_dst hand-off matches chains on the original destination; original_dst alone restores it without hand-off', async () => {
  const svc = await tagServer('svc');
  const other = await tagServer('other');
  const pass = await tagServer('pass');
  const app = await tagServer('app');
  const wrong = await tagServer('wrong');
  let dst = { ip: '240.240.0.5', port: 9999 };
  const lm = manager({
    clusters: portClusters({ svc, other, pass, app, wrong }), secrets: noSecrets, hcmFactory,
    originalDestination: () => dst,
  });
  const unbound = (name: string, port: number, chains: unknown[]) => ({ name, address: { socket_address: { address: '0.0.0.0', port_value: port } }, bind_to_port: false, filter_chains: chains });
  await lm.apply(new Map<string, Record<string, unknown>>([
    ['virtualOutbound', tcpListener('virtualOutbound', 0, [tcpChain('pass')], { use_original_dst: true })],
    ['0.0.0.0_9999', unbound('0.0.0.0_9999', 9999, [tcpChain('svc', { prefix_ranges: [{ address_prefix: '240.240.0.5', prefix_len: 32 }] }), tcpChain('other')])],
    ['0.0.0.0_8080', unbound('0.0.0.0_8080', 8080, [tcpChain('wrong')])],
    ['virtualInbound', tcpListener('virtualInbound', 0, [tcpChain('app', { destination_port: 8080 }), tcpChain('pass')], {
      listener_filters: [{ name: 'envoy.filters.listener.original_dst', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst' } }],
    })],
  ]));
  const out = lm.boundPort('virtualOutbound')!;
  const inb = lm.boundPort('virtualInbound')!;
  assert.equal(await say(out, 'hi'), 'svc:hi', 'handed to 0.0.0.0_9999, chain chosen by the VIP');
  dst = { ip: '240.240.0.6', port: 9999 };
  assert.equal(await say(out, 'hi'), 'other:hi');
  dst = { ip: '10.0.0.1', port: 7777 };
  assert.equal(await say(out, 'hi'), 'pass:hi', 'no listener for the destination: the receiving listener serves it');
  dst = { ip: '10.212.0.2', port: 8080 };
  assert.equal(await say(inb, 'hi'), 'app:hi', 'inbound: chain by original destination port, no hand-off to the outbound 0.0.0.0_8080');
  dst = { ip: '10.212.0.2', port: 8081 };
  assert.equal(await say(inb, 'hi'), 'pass:hi');
  await lm.drainAll(100);
});

test('transparent capture: an HTTP chain of a handed-off connection gets the original destination (for ORIGINAL_DST clusters)', async () => {
  const seen: unknown[] = [];
  const recordingHcm = () => ({
    handleConnection: (socket: net.Socket, _protocol: 'http/1.1' | 'h2', meta?: unknown) => {
      seen.push(meta);
      socket.end('HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    },
  });
  const lm = manager({ clusters: portClusters({}), secrets: noSecrets, hcmFactory: recordingHcm, originalDestination: () => ({ ip: '10.212.0.7', port: 8080 }) });
  const hcm = { name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', stat_prefix: 'x' } };
  await lm.apply(new Map<string, Record<string, unknown>>([
    ['virtualOutbound', tcpListener('virtualOutbound', 0, [tcpChain('pass')], { use_original_dst: true })],
    ['0.0.0.0_8080', { name: '0.0.0.0_8080', address: { socket_address: { address: '0.0.0.0', port_value: 8080 } }, bind_to_port: false, filter_chains: [{ filters: [hcm] }] }],
  ]));
  const reply = await say(lm.boundPort('virtualOutbound')!, 'GET / HTTP/1.1\r\nhost: 10.212.0.7:8080\r\n\r\n');
  assert.match(reply, /^HTTP\/1.1 204/);
  assert.deepEqual(seen, [{ originalDestination: { address: '10.212.0.7', port: 8080 } }]);
  await lm.drainAll(100);
});
