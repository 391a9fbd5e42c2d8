/**
 * Simulated ADS clients for the control-plane benchmark (a child process; the parent runs several).
 * Opens `--streams N` SotW ADS streams to `--xds HOST:PORT` (light gRPC framing, see light-ads.ts)
 * definition, each behaving like Envoy: subscribe CDS and LDS wildcard, follow the EDS names the
 * clusters and the RDS names the listeners name, and ACK every response (version + nonce).
 * Resource names are learnt by decoding a response once per (type, version) per process, so a
 * thousand streams cost one decode per push; otherwise a response is only scanned for its
 * top-level fields (version, type, nonce): a real client decodes on its own CPU, these share the
 * control plane's. The transport is `light-ads.ts` (gRPC framing on node:http2, Envoy-sized
 * windows); streams share a few HTTP/2 connections (`--channels`).
 *
 * Reports JSON lines on stdout: `{"ev":"ready"}` once every stream ACKed CDS, EDS, LDS and RDS,
 * then batches `{"ev":"acks","acks":[[stream, "RDS", version, epochMs], ...]}` every 20 ms.
 * Node ids `sidecar~10.1.<p>.<s>~bench-<p>-<s>.<ns>~<ns>.svc.cluster.local`; `--namespaces K`
 * spreads the streams over namespaces ns-0..ns-(K-1) (distinct proxies translation can't share).
 */
import { parseArgs } from 'node:util';
import type { DiscoveryRequestMsg } from '../src/xds/ads-wire.ts';
import { decodeMessage, decodeResource, type AnyBytes } from '../src/xds/codec.ts';
import { LightAdsConnection, type LightAdsStream, type ScannedResponse } from './light-ads.ts';
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

// Names followed from a CDS / LDS response, decoded once per version for all streams.
const followCache = new Map<string, string[]>();
function followedNames(type: Short, res: ScannedResponse): string[] {
  const key = `${type}|${res.version}`;
  let names = followCache.get(key);
  if (names !== undefined) return names;
  const set = new Set<string>();
  const whole = decodeMessage('envoy.service.discovery.v3.DiscoveryResponse', Buffer.concat(res.parts), { rawAny: true }) as { resources?: AnyBytes[] };
  for (const any of whole.resources ?? []) {
    const json = decodeResource(typeUrls[type], any.value) as Record<string, unknown>;
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

const connections = Array.from({ length: channels }, () => new LightAdsConnection(values.xds!));

let pendingAcks: [number, Short, string, number][] = [];
let readyCount = 0;

class SimStream {
  readonly index: number;
  readonly call: LightAdsStream;
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
    this.call = connections[index % connections.length].open(
      (res) => this.#onResponse(res),
      (why) => process.stderr.write(`stream ${index}: ${why}\n`),
    );
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

  #onResponse(res: ScannedResponse): void {
    const type = shortOf.get(res.typeUrl);
    if (type === undefined) return;
    const version = res.version;
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
  for (const c of connections) c.close();
  process.exit(0);
});
process.stdin.resume();
