/**
 * The transparent-mode DNS responder: a UDP server (run by `trellis up` in the host network
 * namespace on the bridge address, named as `nameserver` in every workload namespace's
 * resolv.conf) answering A queries for mesh service names with their VIPs. What a name means is
 * the caller's `resolve(name, clientAddress)`: the runtime resolves it through the service
 * registry (Kubernetes search-path forms, from the client's namespace). A known name asked for
 * another type gets an empty NOERROR answer (so resolvers asking A and AAAA in parallel use the
 * A answer); an unknown name gets NXDOMAIN; a packet that is not a well-formed query is dropped.
 * A failing resolve answers SERVFAIL: no input stops the responder.
 */
import dgram from 'node:dgram';
import { TrellisError } from '../../errors.ts';
import { buildAnswer, DnsType, parseQuery, Rcode } from './wire.ts';

/** IPv4 addresses for `name` (empty array: the name exists but has no address), or undefined: no such name. */
export type DnsResolve = (name: string, clientAddress: string) => readonly string[] | undefined;

export interface DnsResponder {
  readonly address: string;
  readonly port: number;
  /** Queries answered and packets dropped, for tests and status. */
  readonly stats: { answered: number; dropped: number };
  close(): Promise<void>;
}

const ipv4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Starts the responder on `host:port` (port 0 = any). */
export function startDnsResponder(opts: { host: string; port: number; resolve: DnsResolve; ttl?: number; log?: (line: string) => void }): Promise<DnsResponder> {
  const sock = dgram.createSocket({ type: 'udp4' });
  const stats = { answered: 0, dropped: 0 };
  sock.on('message', (msg, rinfo) => {
    const q = parseQuery(msg);
    if (q === undefined) {
      stats.dropped++;
      return;
    }
    let out: Buffer;
    try {
      if (q.qclass !== 1 && q.qclass !== 255) out = buildAnswer(q, Rcode.NXDOMAIN);
      else {
        const ips = opts.resolve(q.name, rinfo.address);
        if (ips === undefined) out = buildAnswer(q, Rcode.NXDOMAIN);
        else out = buildAnswer(q, Rcode.NOERROR, q.qtype === DnsType.A || q.qtype === DnsType.ANY ? ips.filter((a) => ipv4.test(a)) : [], opts.ttl);
      }
    } catch (err) {
      opts.log?.(`dns: resolving ${q.name} failed: ${(err as Error).message}`);
      out = buildAnswer(q, Rcode.SERVFAIL);
    }
    stats.answered++;
    sock.send(out, rinfo.port, rinfo.address, () => {});
  });
  return new Promise((resolve, reject) => {
    sock.once('error', (err) => reject(new TrellisError('RUNTIME_DNS', `DNS responder cannot listen on ${opts.host}:${opts.port}: ${err.message}`, { cause: err })));
    sock.bind(opts.port, opts.host, () => {
      sock.removeAllListeners('error');
      sock.on('error', (err) => opts.log?.(`dns: ${err.message}`));
      const a = sock.address();
      resolve({
        address: a.address,
        port: a.port,
        stats,
        close: () => new Promise<void>((r) => sock.close(() => r())),
      });
    });
  });
}
