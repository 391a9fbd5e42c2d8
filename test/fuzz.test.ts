/**
 * The fuzz pass, bounded in time: random and mutated inputs against the HTTP/1.1 and HTTP/2
 * codecs of a real `trellis proxy` process (which must stay up and keep answering a canary
 * request over HTTP/1.1 and h2c between batches), and against the xDS decoder in-process (in a
 * worker thread, so a hang is caught: decoding must return or throw TrellisError XDS_CODEC).
 * Seeds are the raw differential's generated cases and the control plane's golden output.
 *
 * An input that kills the proxy, stops it serving, or makes the decoder throw anything else or
 * hang is saved under test/fuzz/regressions/ (see its README) and replayed first by every later
 * run. Budget: TRELLIS_FUZZ_SECONDS (default 60, split HTTP/1.1 45%, HTTP/2 40%, xDS 15%);
 * TRELLIS_FUZZ_SEED=<n>|random (default a fixed seed, so CI explores the same inputs each run and a
 * failure there reproduces; the longer run on demand: TRELLIS_FUZZ_SECONDS=600 TRELLIS_FUZZ_SEED=random).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { Rng } from './differential/prng.ts';
import { generateH1Case } from './differential/raw-h1.ts';
import { generateH2Case } from './differential/raw-h2.ts';
import { mutate } from './fuzz/mutate.ts';
import { startProxyTarget, type ProxyTarget } from './fuzz/proxy-target.ts';
import { SHARED_INPUT_OFFSET, TYPES, type XdsFuzzInput, type XdsFuzzMessage } from './fuzz/xds-worker.ts';
import { Cleanups } from './support/processes.ts';

const BUDGET_S = Number(process.env.TRELLIS_FUZZ_SECONDS ?? 60);
const seedEnv = process.env.TRELLIS_FUZZ_SEED ?? '20261206';
const SEED = seedEnv === 'random' ? Math.floor(Math.random() * 2 ** 31) : Number(seedEnv);
const REGRESSIONS = join(import.meta.dirname, 'fuzz', 'regressions');
const BATCH = 64;
const IN_FLIGHT = 16;

const cleanups = new Cleanups();
after(() => cleanups.run());

/** Saves a failing input (once) and returns its file name. */
function saveRegression(kind: string, input: Uint8Array): string {
  mkdirSync(REGRESSIONS, { recursive: true });
  const name = `${kind}-${createHash('sha256').update(input).digest('hex').slice(0, 12)}.bin`;
  const file = join(REGRESSIONS, name);
  if (!existsSync(file)) writeFileSync(file, input);
  return name;
}

function regressions(prefix: string): Buffer[] {
  if (!existsSync(REGRESSIONS)) return [];
  return readdirSync(REGRESSIONS).filter((n) => n.startsWith(`${prefix}-`) && n.endsWith('.bin')).sort().map((n) => readFileSync(join(REGRESSIONS, n)));
}

/** Writes `input` on a fresh connection (sometimes in two pieces) and waits briefly for the proxy's answer or close. */
function throwAt(port: number, input: Buffer, split: number): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let quiet: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(quiet);
      s.destroy();
      resolve();
    };
    const arm = () => {
      clearTimeout(quiet);
      quiet = setTimeout(done, 30);
    };
    s.on('data', arm);
    s.on('error', done);
    s.on('close', done);
    s.on('connect', () => {
      if (split > 0 && split < input.length) {
        s.write(input.subarray(0, split));
        setTimeout(() => {
          if (!s.destroyed) s.write(input.subarray(split));
          arm();
        }, 2);
      } else {
        s.write(input);
        arm();
      }
    });
    setTimeout(done, 2000);
  });
}

interface HttpFuzzStats {
  inputs: number;
  /** Of which saved regression inputs, replayed first. */
  regressions: number;
  batches: number;
  failures: string[];
}

/** Fuzzes one codec until `deadline`; `prefix` names its regression files (h1, h2). */
async function fuzzCodec(target: ProxyTarget, prefix: string, pool: Buffer[], rng: Rng, deadline: number): Promise<HttpFuzzStats> {
  const stats: HttpFuzzStats = { inputs: 0, regressions: 0, batches: 0, failures: [] };
  const replay = regressions(prefix);
  const check = async (batch: Buffer[]): Promise<void> => {
    stats.batches++;
    await new Promise((r) => setTimeout(r, 10));
    const dead = !target.alive();
    const problem = dead ? 'the proxy process exited' : await target.canary();
    if (problem === undefined) return;
    // Find the input responsible: replay the batch one at a time on a fresh proxy.
    await target.restart();
    let culprit: Buffer | undefined;
    for (const input of batch) {
      await throwAt(target.port, input, 0);
      await new Promise((r) => setTimeout(r, 10));
      if (!target.alive() || (await target.canary()) !== undefined) {
        culprit = input;
        await target.restart();
        break;
      }
    }
    const saved = saveRegression(prefix, culprit ?? Buffer.concat(batch));
    stats.failures.push(`${problem}${culprit ? '' : ' (not reproduced by any single input of the batch; the whole batch was saved)'}: test/fuzz/regressions/${saved}\n${target.proxy.output().slice(-1500)}`);
  };
  // Regression inputs first, each checked on its own.
  for (const input of replay) {
    stats.inputs++;
    stats.regressions++;
    await throwAt(target.port, input, 0);
    await check([input]);
  }
  while (Date.now() < deadline && stats.failures.length < 3) {
    const batch: Buffer[] = [];
    while (batch.length < BATCH) batch.push(mutate(rng, pool));
    for (let i = 0; i < batch.length; i += IN_FLIGHT) {
      await Promise.all(batch.slice(i, i + IN_FLIGHT).map((input) => throwAt(target.port, input, rng.chance(0.2) ? rng.int(1, input.length - 1) : 0)));
    }
    stats.inputs += batch.length;
    await check(batch);
  }
  return stats;
}

test('fuzz: mutated HTTP/1.1 and HTTP/2 bytes never stop a real trellis proxy from serving', { timeout: BUDGET_S * 1000 + 120_000 }, async (t) => {
  const started = Date.now();
  const target = await startProxyTarget(cleanups);
  const rng = new Rng(SEED);
  const h1Pool = Array.from({ length: 300 }, (_, i) => Buffer.concat(generateH1Case(rng, i).chunks));
  const h2Pool = Array.from({ length: 300 }, (_, i) => Buffer.concat(generateH2Case(rng, i).chunks));
  const t0 = Date.now();
  const h1 = await fuzzCodec(target, 'h1', h1Pool, rng, t0 + BUDGET_S * 450);
  const t1 = Date.now();
  const h2 = await fuzzCodec(target, 'h2', h2Pool, rng, t1 + BUDGET_S * 400);
  const t2 = Date.now();
  t.diagnostic(`seed ${SEED} (TRELLIS_FUZZ_SEED=${SEED}); HTTP/1.1: ${h1.inputs} inputs (${h1.regressions} saved regressions) in ${((t1 - t0) / 1000).toFixed(1)} s, ${h1.batches} canary checks; `
    + `HTTP/2: ${h2.inputs} inputs (${h2.regressions} saved regressions) in ${((t2 - t1) / 1000).toFixed(1)} s, ${h2.batches} canary checks; total ${((Date.now() - started) / 1000).toFixed(1)} s`);
  assert.deepEqual([...h1.failures, ...h2.failures], [], `seed ${SEED}`);
});

test('fuzz: the xDS decoder rejects mutated resources with XDS_CODEC errors only, and never hangs', { timeout: BUDGET_S * 1000 + 60_000 }, async (t) => {
  const shared = new SharedArrayBuffer(SHARED_INPUT_OFFSET + 1024 * 1024);
  const meta = new Int32Array(shared, 0, 4);
  const replay: [number, Uint8Array][] = [];
  TYPES.forEach((url, i) => {
    for (const b of regressions(`xds-${url.slice(url.lastIndexOf('.') + 1)}`)) replay.push([i, b]);
  });
  const input: XdsFuzzInput = { seed: SEED, deadline: Date.now() + BUDGET_S * 150, shared, replay };
  const worker = new Worker(new URL('./fuzz/xds-worker.ts', import.meta.url), { workerData: input });
  const failures: string[] = [];
  const typeName = (i: number) => TYPES[i].slice(TYPES[i].lastIndexOf('.') + 1);
  const result = await new Promise<{ iterations: number; decoded: number } | 'hang'>((resolve, reject) => {
    let last = -1;
    let since = Date.now();
    const watchdog = setInterval(() => {
      const now = Atomics.load(meta, 0);
      if (now !== last) {
        last = now;
        since = Date.now();
      } else if (Date.now() - since > 10_000) {
        clearInterval(watchdog);
        const len = Math.min(Atomics.load(meta, 1), shared.byteLength - SHARED_INPUT_OFFSET);
        const stuck = Buffer.from(new Uint8Array(shared, SHARED_INPUT_OFFSET, len));
        failures.push(`decoder hung for 10 s: test/fuzz/regressions/${saveRegression(`xds-${typeName(Atomics.load(meta, 2))}`, stuck)}`);
        void worker.terminate();
        resolve('hang');
      }
    }, 500);
    worker.on('message', (m: XdsFuzzMessage) => {
      if (m.kind === 'failure') failures.push(`${m.error.split('\n').slice(0, 4).join(' | ')}: test/fuzz/regressions/${saveRegression(`xds-${typeName(m.typeIndex)}`, m.input)}`);
      else {
        clearInterval(watchdog);
        resolve(m);
      }
    });
    worker.on('error', (err) => {
      clearInterval(watchdog);
      reject(err);
    });
  });
  await worker.terminate();
  if (result !== 'hang') {
    t.diagnostic(`seed ${SEED}: ${result.iterations} xDS inputs (${replay.length} regression files), ${result.decoded} decoded, the rest rejected with XDS_CODEC, in ${(BUDGET_S * 0.15).toFixed(0)} s`);
    assert.ok(result.iterations > 100, 'the decoder fuzz ran');
  }
  assert.deepEqual(failures.slice(0, 10), [], `seed ${SEED}`);
});
