/**
 * Loopback port bookkeeping for `trellis up`: free ports are found by binding port 0 (the kernel
 * picks), holding every socket of one batch open until the batch is complete so the batch never
 * contains duplicates, then releasing them for the processes that will bind them; no port is
 * handed out twice by one process. A small window remains between release and the child's bind
 * (another program may take the port); the supervisor treats a bind failure there like any
 * start failure (replicas retry with fresh ports).
 */
import { createServer, createConnection, type Server } from 'node:net';
import { TrellisError } from '../errors.ts';

function listen(port: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.once('error', reject);
    s.listen({ port, host, exclusive: true }, () => resolve(s));
  });
}

function close(s: Server): Promise<void> {
  return new Promise((resolve) => s.close(() => resolve()));
}

/**
 * Ports this process has already handed out. `trellis up` allocates ports for the control plane,
 * the gateway and every replica at once, each batch released before its process binds it; the
 * kernel may give a just-released port to the next bind(0), so a later batch skips these.
 */
const handedOut = new Set<number>();

/** `n` distinct free ports on `host` (default 127.0.0.1), none handed out by an earlier call. */
export async function allocatePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const servers: Server[] = [];
  const fresh: number[] = [];
  try {
    // A port handed out before stays bound here until the batch is complete, so bind(0) moves on.
    for (let tries = 0; fresh.length < n; tries++) {
      if (tries > n + 1000) throw new TrellisError('RUNTIME_PORT', `could not find ${n} free ports on ${host}`);
      const s = await listen(0, host);
      servers.push(s);
      const a = s.address();
      if (a === null || typeof a === 'string') throw new TrellisError('RUNTIME_PORT', 'could not read a bound port');
      if (!handedOut.has(a.port)) fresh.push(a.port);
    }
    for (const p of fresh) handedOut.add(p);
    return fresh;
  } finally {
    await Promise.all(servers.map(close));
  }
}

/** True when `port` can be bound on `host` right now (0.0.0.0 is checked too: gateways bind it). */
export async function isPortFree(port: number, host = '0.0.0.0'): Promise<boolean> {
  try {
    await close(await listen(port, host));
    return true;
  } catch {
    return false;
  }
}

/** True when something accepts TCP connections on 127.0.0.1:`port` (bounded by `timeoutMs`). */
export function isListening(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ port, host });
    const done = (v: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}
