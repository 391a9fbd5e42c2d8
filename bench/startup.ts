/**
 * Startup benchmark (`npm run bench:startup`): how long a user waits for the CLI. Side by side in
 * one run, interleaved (round-robin, so machine load hits every variant alike), it times
 *   - `trellis --help`, `trellis status` and `trellis proxy-status` against a running demo mesh,
 *     and `trellis analyze examples/`: wall time from spawn to exit;
 *   - `trellis up --detach` on the demo until the first 200 through the gateway (and, separately,
 *     until `up` itself returned), then `trellis down` (not timed).
 * Variants (`--variants`, default `current,baseline` when `--baseline REF` is given):
 *   - `current`: this checkout as a user runs it (`bin/trellis.js`: compiled dist/ when current);
 *   - `source`: this checkout with TRELLIS_FROM_SOURCE=1 (TypeScript sources, type-stripped);
 *   - `baseline`: the tree of git REF (`git archive`, node_modules linked to this checkout's);
 *   - `npx`: `npx trellis` from this checkout (what the npx launcher itself adds).
 * Every sample runs `bin/trellis.js` with this project's pinned Node. Besides wall time it records
 * CPU time, which a busy shared machine inflates far less: a CLI run's user+system time (through
 * /usr/bin/time), and for `up` the CPU every process of the mesh had used when it became ready
 * (from /proc). On an idle 2-core machine wall time is about CPU time for a CLI run and at least
 * half the CPU total for `up`. Prints medians (and p90, min, max) per variant and command, ratios
 * against the first variant, and writes
 * bench/results/<date>-startup.json. `--load` runs `npm test` of this checkout in the background
 * while timing `up` (the issue's "machine loaded" figure), and stops it after.
 *
 *   npm run bench:startup -- --baseline main --reps 10
 *   npm run bench:startup -- --variants current,source --no-up
 *   npm run bench:startup -- --commands up --up-reps 5 --load
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const root = join(import.meta.dirname, '..');
const node = join(root, 'node_modules/.bin/node');

const { values } = parseArgs({
  options: {
    reps: { type: 'string', default: '10' },
    'up-reps': { type: 'string' },
    baseline: { type: 'string' },
    variants: { type: 'string' },
    commands: { type: 'string', default: 'help,status,proxy-status,analyze,up' },
    'no-up': { type: 'boolean', default: false },
    load: { type: 'boolean', default: false },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write('usage: npm run bench:startup -- [--reps N] [--up-reps N] [--baseline GIT_REF] [--variants current,source,baseline,npx]\n' +
    '                                [--commands help,status,proxy-status,analyze,up] [--no-up] [--load] [--out FILE]\n');
  process.exit(0);
}
const reps = Number(values.reps);
const upReps = Number(values['up-reps'] ?? values.reps);
const commands = values.commands.split(',').filter((c) => !(values['no-up'] && c === 'up'));
const variantNames = (values.variants ?? (values.baseline ? 'current,baseline' : 'current,source')).split(',');
if (variantNames.includes('baseline') && !values.baseline) throw new Error('--variants baseline needs --baseline GIT_REF');

interface Variant {
  readonly name: string;
  /** Tree whose bin/trellis.js runs. */
  readonly tree: string;
  readonly env: Record<string, string>;
  /** argv prefix before the trellis arguments. */
  readonly argv: readonly string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const scratch = mkdtempSync(join(tmpdir(), 'trellis-bench-startup-'));

/** The tree of `ref` in a temp dir, using this checkout's node_modules. */
function extractTree(ref: string): string {
  const dir = join(scratch, `tree-${ref.replace(/[^\w.-]/g, '_')}`);
  mkdirSync(dir, { recursive: true });
  const archive = spawnSync('git', ['archive', '--format=tar', ref], { cwd: root, maxBuffer: 1 << 30 });
  if (archive.status !== 0) throw new Error(`git archive ${ref}: ${archive.stderr.toString()}`);
  const untar = spawnSync('tar', ['-x', '-C', dir], { input: archive.stdout });
  if (untar.status !== 0) throw new Error(`tar: ${untar.stderr.toString()}`);
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  // A tree with a compile step builds it as its `npm ci` would.
  if (existsSync(join(dir, 'scripts/build-dist.ts'))) {
    const b = spawnSync(node, [join(dir, 'scripts/build-dist.ts')], { cwd: dir, stdio: 'inherit' });
    if (b.status !== 0) throw new Error(`build of ${ref} failed`);
  }
  return dir;
}

function makeVariant(name: string): Variant {
  const env = { ...process.env, PATH: `${join(root, 'node_modules/.bin')}:${process.env.PATH}` } as Record<string, string>;
  delete env.TRELLIS_FROM_SOURCE;
  delete env.TRELLIS_CONTROL_URL;
  switch (name) {
    case 'current': return { name, tree: root, env, argv: [node, join(root, 'bin/trellis.js')] };
    case 'source': return { name, tree: root, env: { ...env, TRELLIS_FROM_SOURCE: '1' }, argv: [node, join(root, 'bin/trellis.js')] };
    case 'npx': return { name, tree: root, env, argv: ['npx', '--no-install', 'trellis'] };
    case 'baseline': {
      const tree = extractTree(values.baseline!);
      return { name, tree, env, argv: [node, join(tree, 'bin/trellis.js')] };
    }
    default: throw new Error(`unknown variant '${name}'`);
  }
}

const timeTool = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

/** Runs one command to completion; wall ms, CPU ms (user + system, when /usr/bin/time exists) and exit code. */
function timed(v: Variant, args: readonly string[], cwd: string): Promise<{ ms: number; cpuMs: number; code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const cpuFile = join(scratch, `cpu-${process.pid}-${Math.random().toString(36).slice(2)}`);
    const argv = timeTool !== undefined ? [timeTool, '-f', '%U %S', '-o', cpuFile, ...v.argv] : [...v.argv];
    const t0 = performance.now();
    const child = spawn(argv[0], [...argv.slice(1), ...args], { cwd, env: v.env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      const ms = performance.now() - t0;
      let cpuMs = NaN;
      try {
        const [u, sy] = readFileSync(cpuFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
        cpuMs = (u + sy) * 1000;
        rmSync(cpuFile, { force: true });
      } catch {
        // no /usr/bin/time
      }
      resolve({ ms, cpuMs, code, stderr });
    });
  });
}

/** CPU ms (user + system, with reaped children) a process has used so far, from /proc. */
function procCpuMs(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const x = f.slice(f.lastIndexOf(')') + 2).split(' ').map(Number);
    return ((x[11] + x[12] + x[13] + x[14]) * 1000) / 100; // utime stime cutime cstime, in 10 ms ticks
  } catch {
    return 0;
  }
}

function httpGetStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

interface UpSample { untilReturnMs: number; untilFirst200Ms: number; cpuMs: number; ok: boolean; error?: string }

/** `up --detach` in a fresh state dir, timed until `up` returns and until the gateway's first 200; then `down`. */
async function timeUp(v: Variant): Promise<UpSample> {
  const stateDir = mkdtempSync(join(scratch, `up-${v.name}-`));
  const t0 = performance.now();
  let returned: number | undefined;
  let upCode: number | null = null;
  let upErr = '';
  const cpuFile = join(stateDir, '..', `${stateDir.split('/').pop()}.cpu`);
  const argv = timeTool !== undefined ? [timeTool, '-f', '%U %S', '-o', cpuFile, ...v.argv] : [...v.argv];
  const child = spawn(argv[0], [...argv.slice(1), 'up', '--detach', '--gateway-port', '0', '--state-dir', stateDir], { cwd: v.tree, env: v.env, stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr.on('data', (d: Buffer) => (upErr += d.toString()));
  child.on('close', (code) => {
    returned = performance.now() - t0;
    upCode = code;
  });
  let first200: number | undefined;
  const deadline = t0 + 120_000;
  try {
    while (performance.now() < deadline) {
      let url: string | undefined;
      try {
        url = (JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8')) as { gatewayUrl?: string }).gatewayUrl;
      } catch {
        // not written yet
      }
      if (url !== undefined && (await httpGetStatus(url)) === 200) {
        first200 = performance.now() - t0;
        break;
      }
      if (returned !== undefined && upCode !== 0) break;
      await sleep(20);
    }
    while (returned === undefined && performance.now() < deadline) await sleep(20);
    const ok = first200 !== undefined && upCode === 0;
    // CPU of the whole mesh so far: supervisor, control plane, gateway, sidecars, apps (+ up itself).
    let cpuMs = 0;
    try {
      const [u, sy] = readFileSync(cpuFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
      cpuMs += (u + sy) * 1000; // `up` itself
    } catch {
      // no /usr/bin/time
    }
    try {
      const st = JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8')) as { supervisorPid: number; processes: { pid: number }[] };
      cpuMs += procCpuMs(st.supervisorPid) + st.processes.reduce((sum, p) => sum + procCpuMs(p.pid), 0);
    } catch {
      cpuMs = NaN;
    }
    return { untilReturnMs: returned ?? NaN, untilFirst200Ms: first200 ?? NaN, cpuMs, ok, ...(ok ? {} : { error: `up exit ${upCode}: ${upErr.slice(-500)}` }) };
  } finally {
    if (returned === undefined) child.kill('SIGKILL');
    await timed(v, ['down', '--state-dir', stateDir], v.tree);
  }
}

const stats = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const at = (p: number) => (s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]);
  return { n: s.length, median: s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2, p90: at(0.9), min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN };
};

/** Starts `npm test` of this checkout as background load (its own process group). */
function startLoad(): ChildProcess {
  const child = spawn('npm', ['test'], { cwd: root, env: { ...process.env, TRELLIS_SKIP_TYPECHECK: '1' }, detached: true, stdio: 'ignore' });
  child.unref();
  return child;
}
function stopLoad(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    // gone
  }
}

async function main(): Promise<void> {
  const variants = variantNames.map(makeVariant);
  const samples: Record<string, Record<string, number[]>> = {};
  const cpuSamples: Record<string, Record<string, number[]>> = {};
  const upSamples: Record<string, UpSample[]> = {};
  for (const v of variants) {
    samples[v.name] = {};
    cpuSamples[v.name] = {};
    upSamples[v.name] = [];
  }
  const cliCommands = commands.filter((c) => c !== 'up');
  const load0 = loadavg()[0];

  if (cliCommands.length > 0) {
    // One mesh (started by the first variant) answers every variant's status / proxy-status.
    const meshDir = mkdtempSync(join(scratch, 'mesh-'));
    const meshVariant = variants.find((v) => v.name !== 'npx') ?? variants[0];
    const started = await timed(meshVariant, ['up', '--detach', '--gateway-port', '0', '--state-dir', meshDir], meshVariant.tree);
    if (started.code !== 0) throw new Error(`could not start the mesh for status/proxy-status: ${started.stderr}`);
    const state = JSON.parse(readFileSync(join(meshDir, 'state.json'), 'utf8')) as { controlDebugPort: number };
    const argsOf: Record<string, string[]> = {
      help: ['--help'],
      status: ['status', '--state-dir', meshDir],
      'proxy-status': ['proxy-status', '--control', `http://127.0.0.1:${state.controlDebugPort}`],
      analyze: ['analyze', 'examples/'],
    };
    try {
      for (const v of variants) await timed(v, ['--help'], v.tree); // warm the page cache
      for (let i = 0; i < reps; i++) {
        for (const c of cliCommands) {
          for (const v of variants) {
            const r = await timed(v, argsOf[c], v.tree);
            if (r.code !== 0 && !(c === 'help' && r.code === 2)) throw new Error(`${v.name} ${c} exited ${r.code}: ${r.stderr}`);
            (samples[v.name][c] ??= []).push(r.ms);
            (cpuSamples[v.name][c] ??= []).push(r.cpuMs);
          }
        }
        process.stderr.write(`cli round ${i + 1}/${reps}\n`);
      }
    } finally {
      await timed(meshVariant, ['down', '--state-dir', meshDir], meshVariant.tree);
    }
  }

  let upLoad: number[] = [];
  if (commands.includes('up')) {
    const load = values.load ? startLoad() : undefined;
    if (load) await sleep(15_000); // let the test run reach its busy phase
    try {
      for (let i = 0; i < upReps; i++) {
        for (const v of variants) {
          if (v.name === 'npx' && variants.length > 1) continue;
          const s = await timeUp(v);
          upSamples[v.name].push(s);
          process.stderr.write(`up ${v.name} #${i + 1}: ${s.ok ? `${(s.untilFirst200Ms / 1000).toFixed(2)} s to first 200 (up returned at ${(s.untilReturnMs / 1000).toFixed(2)} s)` : s.error}\n`);
        }
        upLoad.push(loadavg()[0]);
      }
    } finally {
      if (load) stopLoad(load);
    }
  }

  const result = {
    date: new Date().toISOString(),
    command: `node bench/startup.ts ${process.argv.slice(2).join(' ')}`.trim(),
    cpus: cpus().length,
    node: process.version,
    loadAverageAtStart: load0,
    backgroundLoad: values.load ? 'npm test' : 'none',
    upLoadAverage: upLoad,
    baseline: values.baseline,
    variants: Object.fromEntries(variants.map((v) => [v.name, {
      cli: Object.fromEntries(Object.entries(samples[v.name]).map(([c, xs]) => [c, { ...stats(xs), samples: xs.map((x) => Math.round(x)), cpu: stats(cpuSamples[v.name][c]) }])),
      up: upSamples[v.name].length === 0 ? undefined : {
        untilFirst200: { ...stats(upSamples[v.name].filter((s) => s.ok).map((s) => s.untilFirst200Ms)), samples: upSamples[v.name].map((s) => Math.round(s.untilFirst200Ms)) },
        untilReturn: stats(upSamples[v.name].filter((s) => s.ok).map((s) => s.untilReturnMs)),
        cpu: stats(upSamples[v.name].filter((s) => s.ok).map((s) => s.cpuMs)),
        failures: upSamples[v.name].filter((s) => !s.ok).map((s) => s.error),
      },
    }])),
  };

  // Table: one row per command, one column per variant (median ms), ratio against the first.
  const rows: string[][] = [['command', ...variants.map((v) => `${v.name} median (p90)`), ...(variants.length > 1 ? variants.slice(1).map((v) => `${v.name}/${variants[0].name}`) : []), ...variants.map((v) => `${v.name} CPU`)]];
  const cell = (s: { median: number; p90: number } | undefined) => (s === undefined || !Number.isFinite(s.median) ? '-' : `${Math.round(s.median)} ms (${Math.round(s.p90)})`);
  const med = (v: Variant, c: string) => (c === 'up' ? result.variants[v.name].up?.untilFirst200.median : result.variants[v.name].cli[c]?.median);
  for (const c of commands) {
    const label = c === 'help' ? 'trellis --help' : c === 'analyze' ? 'trellis analyze examples/' : c === 'up' ? 'trellis up --detach -> first 200' : `trellis ${c}`;
    const stat = (v: Variant) => (c === 'up' ? result.variants[v.name].up?.untilFirst200 : result.variants[v.name].cli[c]);
    rows.push([label, ...variants.map((v) => cell(stat(v))),
      ...variants.slice(1).map((v) => {
        const a = med(variants[0], c);
        const b = med(v, c);
        return a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) ? `${(b / a).toFixed(2)}x` : '-';
      }),
      ...variants.map((v) => {
        const cpu = c === 'up' ? result.variants[v.name].up?.cpu.median : result.variants[v.name].cli[c]?.cpu.median;
        return cpu === undefined || !Number.isFinite(cpu) ? '-' : `${Math.round(cpu)} ms`;
      })]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  process.stdout.write(`\nstartup (${cpus().length} cpus, load ${load0.toFixed(2)} at start${values.load ? ', `npm test` running during up' : ''}; medians of ${reps} CLI runs, ${upReps} ups)\n`);
  for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(widths[i])).join('  ') + '\n');

  const out = values.out ?? join(root, 'bench/results', `${result.date.slice(0, 10)}-startup${values.load ? '-loaded' : ''}.json`);
  mkdirSync(join(out, '..'), { recursive: true });
  writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
  process.stdout.write(`wrote ${out}\n`);
}

try {
  await main();
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
