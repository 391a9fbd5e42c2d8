/**
 * Simulated ADS clients for the control-plane benchmark (a child process; the parent runs several).
 * Opens `--streams N` SotW ADS streams to `--xds HOST:PORT` with grpc-js and the shared ADS service
 * definition, each behaving like Envoy: subscribe CDS and LDS wildcard, follow the EDS names the
 * clusters and the RDS names the listeners name, and ACK every response (version + nonce).
 * Resource names are learnt by decoding a response once per (type, version) per process, so a
 * thousand streams cost one decode per push; otherwise a response is only scanned for its
 * top-level fields (version, type, nonce) and its resources kept as raw bytes: a real client
 * decodes on its own CPU, these share the control plane's. Streams use a few HTTP/2 connections
 * (`--channels`) with Envoy-sized flow-control windows (Envoy's defaults are 256 MiB; grpc-js's
 * 64 KiB would make every large response wait for window updates).
 *
 * Reports JSON lines on stdout: `{"ev":"ready"}` once every stream ACKed CDS, EDS, LDS and RDS,
 * then batches `{"ev":"acks","acks":[[stream, "RDS", version, epochMs], ...]}` every 20 ms.
 * Node ids `sidecar~10.1.<p>.<s>~bench-<p>-<s>.<ns>~<ns>.svc.cluster.local`; `--namespaces K`
 * spreads the streams over namespaces ns-0..ns-(K-1) (distinct proxies translation can't share).
 */
import { parseArgs } from 'node:util';
import { credentials, makeGenericClientConstructor, type ClientDuplexStream } from '@grpc/grpc-js';
import { adsServiceDefinition, type DiscoveryRequestMsg } from '../src/xds/ads-wire.ts';
import { decodeResource } from '../src/xds/codec.ts';
import { TypeUrl } from '../src/xds/types.ts';

const { values } = parseArgs({
  options: {
    xds: { type: 'string' },
    streams: { type: 'string', default: '100' },
    channels: { type: 'string', default: '4' },
    proc: { type: 'string', default: '0' },
    namespaces: { type: 'string', default: '1' },
  },
});
const streams = Number(values.streams);
const channels = Number(values.channels);
const procIndex = Number(values.proc);
const namespaces = Number(values.namespaces);

type Short = 'CDS' | 'EDS' | 'LDS' | 'RDS';
const typeUrls: Record<Short, string> = { CDS: TypeUrl.Cluster, EDS: TypeUrl.ClusterLoadAssignment, LDS: TypeUrl.Listener, RDS: TypeUrl.RouteConfiguration };
const shortOf = new Map(Object.entries(typeUrls).map(([k, v]) => [v, k as Short]));

/** A DiscoveryResponse as this client reads it: top-level fields, resources as raw Any values. */
interface LightResponse {
  version_info: string;
  type_url: string;
  nonce: string;
  /** Each resource's Any.value bytes (views into the received buffer). */
  resources: Buffer[];
}

function readVarint(buf: Buffer, pos: number): [number, number] {
  let v = 0;
  let shift = 0;
  for (;;) {
    const b = buf[pos++];
    v += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return [v, pos];
    shift += 7;
  }
}

/** Field 2 of google.protobuf.Any (value) inside one encoded Any. */
function anyValue(any: Buffer): Buffer {
  let pos = 0;
  while (pos < any.length) {
    const [key, p1] = readVarint(any, pos);
    const [len, p2] = readVarint(any, p1);
    if (key >>> 3 === 2) return any.subarray(p2, p2 + len);
    pos = p2 + len;
  }
  return any.subarray(0, 0);
}

/** Scans a DiscoveryResponse's top-level fields (all length-delimited) without decoding resources. */
function scanResponse(buf: Buffer): LightResponse {
  const res: LightResponse = { version_info: '', type_url: '', nonce: '', resources: [] };
  let pos = 0;
  while (pos < buf.length) {
    const [key, p1] = readVarint(buf, pos);
    if ((key & 7) !== 2) throw new Error(`unexpected wire type ${key & 7} in DiscoveryResponse`);
    const [len, p2] = readVarint(buf, p1);
    const field = key >>> 3;
    const body = buf.subarray(p2, p2 + len);
    if (field === 1) res.version_info = body.toString('utf8');
    else if (field === 2) res.resources.push(anyValue(body));
    else if (field === 4) res.type_url = body.toString('utf8');
    else if (field === 5) res.nonce = body.toString('utf8');
    pos = p2 + len;
  }
  return res;
}

const lightAdsDefinition = {
  ...adsServiceDefinition,
  StreamAggregatedResources: { ...adsServiceDefinition.StreamAggregatedResources, responseDeserialize: scanResponse },
};

// Names followed from a CDS / LDS response, decoded once per version for all streams.
const followCache = new Map<string, string[]>();
function followedNames(type: Short, res: LightResponse): string[] {
  const key = `${type}|${res.version_info}`;
  let names = followCache.get(key);
  if (names !== undefined) return names;
  const set = new Set<string>();
  for (const value of res.resources) {
    const json = decodeResource(typeUrls[type], value) as Record<string, unknown>;
    if (type === 'CDS') {
      if (json.type === 'EDS') {
        const eds = json.eds_cluster_config as { service_name?: string } | undefined;
        set.add(eds?.service_name || String(json.name));
      }
    } else {
      const text = JSON.stringify(json);
      for (const m of text.matchAll(/"route_config_name":"([^"]+)"/g)) set.add(m[1]);
    }
  }
  names = [...set].sort();
  followCache.set(key, names);
  if (followCache.size > 64) followCache.delete(followCache.keys().next().value as string);
  return names;
}

const Ads = makeGenericClientConstructor(lightAdsDefinition, 'AggregatedDiscoveryService');
const clients = Array.from({ length: channels }, (_, i) =>
  new Ads(values.xds!, credentials.createInsecure(), {
    'grpc.max_receive_message_length': 512 * 1024 * 1024,
    'grpc.primary_user_agent': `bench-${i}`,
    // one HTTP/2 connection per client object (no subchannel sharing between them)
    'grpc.use_local_subchannel_pool': 1,
    'grpc-node.flow_control_window': 256 * 1024 * 1024,
  }),
);

let pendingAcks: [number, Short, string, number][] = [];
let readyCount = 0;

class SimStream {
  readonly index: number;
  readonly call: ClientDuplexStream<DiscoveryRequestMsg, LightResponse>;
  readonly subs: Record<Short, string[]> = { CDS: [], LDS: [], EDS: [], RDS: [] };
  readonly last: Record<Short, { version: string; nonce: string }> = { CDS: { version: '', nonce: '' }, LDS: { version: '', nonce: '' }, EDS: { version: '', nonce: '' }, RDS: { version: '', nonce: '' } };
  readonly acked = new Set<Short>();
  ready = false;
  #first = true;
  readonly #node: DiscoveryRequestMsg['node'];

  constructor(index: number) {
    this.index = index;
    const ns = `ns-${index % namespaces}`;
    const ip = `10.1.${procIndex}.${index % 250}`;
    this.#node = { id: `sidecar~${ip}~bench-${procIndex}-${index}.${ns}~${ns}.svc.cluster.local`, cluster: 'bench', metadata: { NAMESPACE: ns } };
    const client = clients[index % clients.length] as unknown as { StreamAggregatedResources(): ClientDuplexStream<DiscoveryRequestMsg, LightResponse> };
    this.call = client.StreamAggregatedResources();
    this.call.on('data', (res: LightResponse) => this.#onResponse(res));
    this.call.on('error', (err: Error) => {
      process.stderr.write(`stream ${index}: ${err.message}\n`);
    });
    this.#send('CDS');
    this.#send('LDS');
  }

  #send(type: Short): void {
    const req: DiscoveryRequestMsg = {
      type_url: typeUrls[type],
      version_info: this.last[type].version,
      response_nonce: this.last[type].nonce,
      resource_names: this.subs[type],
    };
    if (this.#first) {
      req.node = this.#node;
      this.#first = false;
    }
    this.call.write(req);
  }

  #onResponse(res: LightResponse): void {
    const type = shortOf.get(res.type_url);
    if (type === undefined) return;
    const version = res.version_info;
    const changedVersion = version !== this.last[type].version;
    this.last[type] = { version, nonce: res.nonce };
    // Like Envoy: follow-on subscriptions first (EDS for new clusters, RDS for new listeners), then the ACK.
    if (type === 'CDS' || type === 'LDS') {
      const follow: Short = type === 'CDS' ? 'EDS' : 'RDS';
      const names = followedNames(type, res);
      const cur = this.subs[follow];
      if (names.length !== cur.length || names.some((n, i) => n !== cur[i])) {
        this.subs[follow] = names;
        this.#send(follow);
      }
    }
    this.#send(type);
    if (changedVersion) pendingAcks.push([this.index, type, version, Date.now()]);
    this.acked.add(type);
    if (!this.ready && this.acked.size === 4) {
      this.ready = true;
      readyCount++;
      if (readyCount === streams) process.stdout.write(JSON.stringify({ ev: 'ready' }) + '\n');
    }
  }
}

const all: SimStream[] = [];
for (let i = 0; i < streams; i++) {
  all.push(new SimStream(i));
  // Stagger connects a little so the server is not hit by one burst of thousands of requests.
  if (i % 50 === 49) await new Promise((r) => setTimeout(r, 5));
}

setInterval(() => {
  if (pendingAcks.length === 0) return;
  const batch = pendingAcks;
  pendingAcks = [];
  process.stdout.write(JSON.stringify({ ev: 'acks', acks: batch }) + '\n');
}, 20);

process.stdin.on('end', () => {
  for (const s of all) s.call.end();
  for (const c of clients) c.close();
  process.exit(0);
});
process.stdin.resume();
