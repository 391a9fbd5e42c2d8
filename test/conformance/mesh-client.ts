/**
 * The mesh profile's client: the semantics of the Istio echo `client` command
 * (`client <proto>://<host><path> [--method=M] [-H Name:value]... [--count=N]`) run from a
 * client workload, with every request sent through THAT workload's sidecar: explicit capture
 * dials the sidecar's outbound listener for the URL's port; transparent capture dials what the
 * host name resolves to (Service VIP, or a pod IP as given) from inside the client pod's network
 * namespace, where iptables hands the connection to the sidecar. Output as the command prints it:
 * `[i] Key=Value` lines (StatusCode, Hostname, Host, URL, Method, Proto, RequestHeader,
 * ResponseHeader). `parseClientOutput` reads those lines back, as the upstream comparer does.
 */
import { sendGrpc, sendHttp, type GrpcRequestSpec, type HttpRequestSpec, type Reply } from './clients.ts';
import { GrpcEchoService } from '../../src/samples/grpc-echo-codec.ts';

/** Explicit capture: the client workload's sidecar, outbound service port -> local listener port. */
export interface ClientSidecar {
  readonly outboundPorts: Readonly<Record<string, number>>;
}

/** Transparent capture: requests sent from inside the client pod, to resolved addresses. */
export interface ClientPod {
  /** Host name of the URL -> IP (VIP or pod IP), or undefined when it does not resolve. */
  resolve(hostname: string): string | undefined;
  http(spec: HttpRequestSpec): Promise<Reply>;
  grpc(spec: GrpcRequestSpec): Promise<Reply>;
}

export interface ClientCommand {
  /** `http://echo/path`, `http://echo-v1:8080/`, `grpc://echo:7070`. */
  url: string;
  method?: string;
  headers?: Record<string, string>;
  count?: number;
  concurrency?: number;
  timeoutMs?: number;
}

/** One parsed response of the client output. */
export interface ClientResponse {
  StatusCode: string;
  Hostname: string;
  Host: string;
  URL: string;
  Method: string;
  Proto: string;
  RequestHeaders: Record<string, string[]>;
  ResponseHeaders: Record<string, string[]>;
  Error?: string;
}

function lines(i: number, r: Reply, host: string, url: string, method: string): string[] {
  const out: string[] = [];
  const p = `[${i}]`;
  if (r.status === 0 && r.error !== undefined) return [`${p} Error=${r.error}`];
  out.push(`${p} StatusCode=${r.grpcStatus !== undefined ? (r.grpcStatus === 0 ? 200 : r.grpcStatus) : r.status}`);
  if (r.echo) {
    out.push(`${p} Hostname=${r.echo.pod}`, `${p} Host=${r.echo.host}`, `${p} URL=${r.echo.path}`, `${p} Method=${r.echo.method}`, `${p} Proto=${r.echo.proto}`);
    for (const [k, vs] of Object.entries(r.echo.headers)) for (const v of vs) out.push(`${p} RequestHeader=${k}:${v}`);
  } else {
    out.push(`${p} Host=${host}`, `${p} URL=${url}`, `${p} Method=${method}`);
  }
  for (const [k, vs] of Object.entries(r.headers)) for (const v of vs) out.push(`${p} ResponseHeader=${k}:${v}`);
  return out;
}

/** Runs the client command; resolves to its output text, or throws on a usage error. */
export async function runClient(sidecar: ClientSidecar | ClientPod, cmd: ClientCommand): Promise<string> {
  const m = /^(http|grpc):\/\/([^/:]+)(?::(\d+))?(\/.*)?$/.exec(cmd.url);
  if (!m) throw new Error(`client: bad url '${cmd.url}'`);
  const [, proto, hostname, portText, pathText] = m;
  const port = portText !== undefined ? Number(portText) : proto === 'grpc' ? 7070 : 80;
  let local = port;
  let address: string | undefined;
  if ('resolve' in sidecar) {
    address = sidecar.resolve(hostname);
    if (address === undefined) throw new Error(`client: cannot resolve '${hostname}'`);
  } else {
    const p = sidecar.outboundPorts[String(port)];
    if (p === undefined) throw new Error(`client: the sidecar has no outbound listener for port ${port}`);
    local = p;
  }
  const grpcSend = (spec: GrpcRequestSpec) => ('resolve' in sidecar ? sidecar.grpc(spec) : sendGrpc(spec));
  const httpSend = (spec: HttpRequestSpec) => ('resolve' in sidecar ? sidecar.http(spec) : sendHttp(spec));
  const host = portText !== undefined ? `${hostname}:${portText}` : hostname;
  const path = pathText ?? '/';
  const method = cmd.method ?? 'GET';
  const count = cmd.count ?? 1;
  const out: string[][] = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      let r: Reply;
      if (proto === 'grpc') {
        r = await grpcSend({ address, port: local, service: GrpcEchoService, method: 'Echo', authority: host, metadata: cmd.headers ?? {}, timeoutMs: cmd.timeoutMs });
      } else {
        const headers = { ...(cmd.headers ?? {}) };
        r = await httpSend({ address, port: local, method, path, host, headers, timeoutMs: cmd.timeoutMs });
      }
      out[i] = lines(i, r, host, path, method);
    }
  };
  await Promise.all(Array.from({ length: Math.min(cmd.concurrency ?? 10, count) }, worker));
  return out.flat().join('\n') + '\n';
}

/** Parses `[i] Key=Value` output into one record per request index. */
export function parseClientOutput(text: string): ClientResponse[] {
  const byIndex = new Map<number, ClientResponse>();
  for (const line of text.split('\n')) {
    const m = /^\[(\d+)\] ([A-Za-z]+)=(.*)$/.exec(line);
    if (!m) continue;
    const i = Number(m[1]);
    let r = byIndex.get(i);
    if (r === undefined) {
      r = { StatusCode: '', Hostname: '', Host: '', URL: '', Method: '', Proto: '', RequestHeaders: {}, ResponseHeaders: {} };
      byIndex.set(i, r);
    }
    const [, , key, value] = m;
    if (key === 'RequestHeader' || key === 'ResponseHeader') {
      const c = value.indexOf(':');
      const name = (c < 0 ? value : value.slice(0, c)).toLowerCase();
      const map = key === 'RequestHeader' ? r.RequestHeaders : r.ResponseHeaders;
      (map[name] ??= []).push(c < 0 ? '' : value.slice(c + 1));
    } else if (key === 'Error') {
      r.Error = value;
    } else if (key in r) {
      (r as unknown as Record<string, string>)[key] = value;
    }
  }
  return [...byIndex.entries()].sort((a, b) => a[0] - b[0]).map(([, r]) => r);
}
