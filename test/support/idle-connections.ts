/**
 * Idle downstream connections, and the memory a proxy spends on them (issue 18, finding 6).
 * Opens many keep-alive connections with raw sockets (so the client costs little next to the
 * proxy it measures) of three kinds: `http1` sends one HTTP/1.1 request and keeps the connection
 * after its response; `silent` connects and never sends a byte; `h2` speaks h2c prior knowledge,
 * sends one request and keeps the session after its response. Reads a process tree's resident
 * memory from /proc (VmRSS of a process and all its descendants: trellis's workers, the process
 * an `envoy` wrapper starts). Used by bench/idle-connections.ts and test/proxy-idle-memory.test.ts.
 */
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { FRAME_HEADERS, FRAME_SETTINGS, PREFACE, frame, headerBlock } from './h2-rapid-reset.ts';

export type IdleKind = 'http1' | 'silent' | 'h2';

export interface IdleConnections {
  /** Connections open and idle. */
  readonly open: number;
  /** Connections that failed (refused, closed by the server, no response in time). */
  readonly failed: number;
  /** Closes every connection. */
  close(): void;
}

export interface IdleOptions {
  readonly port: number;
  readonly count: number;
  readonly kind: IdleKind;
  /** Connections being set up at once (default 100). */
  readonly parallel?: number;
  /** Give up on what is not set up by then (ms since epoch; bound). */
  readonly deadline: number;
  /** Request path (default /idle). */
  readonly path?: string;
}

/** Opens `count` idle connections of one kind; resolves once all are set up or failed. */
export async function openIdleConnections(o: IdleOptions): Promise<IdleConnections> {
  const sockets = new Set<net.Socket>();
  let failed = 0;
  let next = 0;
  const path = o.path ?? '/idle';
  const one = () => new Promise<void>((resolve) => {
    const s = net.connect(o.port, '127.0.0.1');
    let settled = false;
    const done = (ok: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.removeListener('data', onData);
      if (ok) sockets.add(s);
      else {
        failed++;
        s.destroy();
      }
      resolve();
    };
    const timer = setTimeout(() => done(false), Math.max(0, o.deadline - Date.now()));
    s.on('error', () => done(false));
    s.on('close', () => {
      sockets.delete(s);
      done(false);
    });
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (o.kind === 'http1') {
        const head = buf.indexOf('\r\n\r\n');
        if (head < 0) return;
        const len = Number(/\r\ncontent-length: *(\d+)/i.exec(buf.toString('latin1', 0, head))?.[1] ?? 0);
        if (buf.length >= head + 4 + len) done(/^HTTP\/1\.1 200/.test(buf.toString('latin1', 0, 12)));
        return;
      }
      // h2: acknowledge the server's SETTINGS; done once stream 1 ends (END_STREAM on HEADERS or DATA).
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        const type = buf[3];
        const flags = buf[4];
        const stream = buf.readUInt32BE(5) & 0x7fffffff;
        if (type === FRAME_SETTINGS && (flags & 1) === 0) s.write(frame(FRAME_SETTINGS, 1, 0, Buffer.alloc(0)));
        buf = buf.subarray(9 + len);
        if (stream === 1 && (flags & 1) === 1 && type !== FRAME_SETTINGS) return done(true);
      }
    };
    s.on('data', onData);
    s.on('connect', () => {
      if (o.kind === 'silent') return done(true);
      if (o.kind === 'http1') return void s.write(`GET ${path} HTTP/1.1\r\nHost: bench\r\n\r\n`);
      s.write(Buffer.concat([PREFACE, frame(FRAME_SETTINGS, 0, 0, Buffer.alloc(0)), frame(FRAME_HEADERS, 0x5, 1, headerBlock(path, 'bench'))]));
    });
  });
  const worker = async () => {
    while (next < o.count && Date.now() < o.deadline) {
      next++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.parallel ?? 100, o.count) }, worker));
  failed += o.count - next;
  return {
    get open() {
      return sockets.size;
    },
    failed,
    close() {
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
  };
}

/** A process and its descendants (from /proc/<pid>/task/<tid>/children). */
export function processTree(pid: number): number[] {
  const out: number[] = [];
  const visit = (p: number) => {
    out.push(p);
    let tasks: string[] = [];
    try {
      tasks = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter((x) => x !== '');
    } catch {
      // Gone, or no children file (kernel without CONFIG_PROC_CHILDREN).
    }
    for (const c of tasks) visit(Number(c));
  };
  visit(pid);
  return out;
}

/** VmRSS of one process in bytes (0 when it is gone). */
export function rssBytes(pid: number): number {
  try {
    const kb = /VmRSS:\s*(\d+)\s*kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? 0 : Number(kb) * 1024;
  } catch {
    return 0;
  }
}

/** Resident memory of a process tree: the sum, and per process. */
export function treeRss(pid: number): { total: number; byPid: Record<number, number> } {
  const byPid: Record<number, number> = {};
  let total = 0;
  for (const p of processTree(pid)) {
    const r = rssBytes(p);
    byPid[p] = r;
    total += r;
  }
  return { total, byPid };
}
