/**
 * The xDS decoder fuzz loop, run in a worker thread so that a hang can be seen and cut off by
 * the test: seeds are the control plane's own output (every golden file of
 * src/control/translate/testdata, encoded), inputs are mutations of them, and each input is
 * decoded as a resource of a random type. Decoding must return or throw TrellisError XDS_CODEC;
 * a decoded resource must encode back without any other kind of error. Before each decode the
 * input is copied into shared memory with a counter, so the parent can save the input a hang
 * happened on. Failures are posted to the parent as they happen.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { hasCode } from '../../src/errors.ts';
import { decodeResource, encodeResource } from '../../src/xds/codec.ts';
import { TypeUrl, type XdsJson } from '../../src/xds/types.ts';
import { Rng } from '../differential/prng.ts';
import { mutate } from './mutate.ts';

/** What the parent passes. */
export interface XdsFuzzInput {
  seed: number;
  deadline: number;
  /** [counter, input length, type index] as Int32, then the input bytes from byte 16. */
  shared: SharedArrayBuffer;
  /** Regression inputs to replay first: [type index, bytes]. */
  replay: [number, Uint8Array][];
}

/** Messages to the parent. */
export type XdsFuzzMessage =
  | { kind: 'failure'; typeIndex: number; input: Uint8Array; error: string }
  | { kind: 'done'; iterations: number; decoded: number };

export const TYPES: readonly string[] = [TypeUrl.Listener, TypeUrl.RouteConfiguration, TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Secret];
export const SHARED_INPUT_OFFSET = 16;

/** Seeds: every resource of every golden file, encoded, with its type index. */
function seeds(): [number, Buffer][] {
  const dir = join(import.meta.dirname, '..', '..', 'src', 'control', 'translate', 'testdata');
  const out: [number, Buffer][] = [];
  const add = (typeIndex: number, json: unknown) => {
    try {
      out.push([typeIndex, Buffer.from(encodeResource(TYPES[typeIndex], json as XdsJson))]);
    } catch {
      // A golden entry that is not a plain resource: not a seed.
    }
  };
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.golden.json'))) {
    const golden = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record<string, Record<string, unknown>>;
    for (const proxy of Object.values(golden)) {
      const values = (v: unknown): unknown[] => (Array.isArray(v) ? v : v !== null && typeof v === 'object' ? Object.values(v) : []);
      values(proxy.listeners).forEach((r) => add(0, r));
      values(proxy.routes).forEach((r) => add(1, r));
      values(proxy.clusters).forEach((r) => add(2, r));
      values(proxy.endpoints).forEach((r) => add(3, r));
      values(proxy.secrets).forEach((r) => add(4, r));
    }
  }
  return out;
}

function run(input: XdsFuzzInput): void {
  const r = new Rng(input.seed);
  const meta = new Int32Array(input.shared, 0, 4);
  const bytes = new Uint8Array(input.shared, SHARED_INPUT_OFFSET);
  const pool = seeds();
  const buffers = pool.map(([, b]) => b);
  let iterations = 0;
  let decoded = 0;
  const check = (typeIndex: number, data: Uint8Array) => {
    const n = Math.min(data.length, bytes.length);
    bytes.set(data.subarray(0, n));
    Atomics.store(meta, 1, data.length);
    Atomics.store(meta, 2, typeIndex);
    Atomics.add(meta, 0, 1);
    iterations++;
    let json: XdsJson;
    try {
      json = decodeResource(TYPES[typeIndex], data);
    } catch (err) {
      if (!hasCode(err, 'XDS_CODEC')) parentPort!.postMessage({ kind: 'failure', typeIndex, input: data, error: `decode threw ${String((err as Error)?.stack ?? err)}` } satisfies XdsFuzzMessage);
      return;
    }
    decoded++;
    try {
      encodeResource(TYPES[typeIndex], json);
    } catch (err) {
      if (!hasCode(err, 'XDS_CODEC')) parentPort!.postMessage({ kind: 'failure', typeIndex, input: data, error: `re-encoding the decoded resource threw ${String((err as Error)?.stack ?? err)}` } satisfies XdsFuzzMessage);
    }
  };
  for (const [typeIndex, data] of input.replay) check(typeIndex, data);
  while (Date.now() < input.deadline) {
    for (let i = 0; i < 200; i++) {
      const [seedType] = r.pick(pool);
      // Mostly decode as the seed's own type; sometimes as another (a resource of the wrong type).
      const typeIndex = r.chance(0.85) ? seedType : r.int(0, TYPES.length - 1);
      check(typeIndex, mutate(r, buffers));
    }
  }
  parentPort!.postMessage({ kind: 'done', iterations, decoded } satisfies XdsFuzzMessage);
}

if (parentPort !== null && workerData !== null) run(workerData as XdsFuzzInput);
