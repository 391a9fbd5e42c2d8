/**
 * `npm run conformance -- [--cases DIR] [--profile gateway|mesh] [--json] [--filter NAME]`:
 * runs the Gateway API conformance corpus (default ../shared/conformance/gateway-api next to
 * the repository, plus test/conformance/cases) against real `trellis control`, gateway
 * proxies, sidecars and echo backends. Prints one line per case file, the failures and skips with reasons, and ends with
 * `N passed, M failed, K skipped`. With --json the report is a JSON document on stdout and the
 * summary line goes to stderr. Exit code 0 only when nothing failed; 2 on usage errors.
 */
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { Corpus, EXTRA_CASES, type Profile } from './corpus.ts';
import { killAll } from './processes.ts';
import { runProfile } from './profile.ts';
import { removeNamespacesSync } from './pod-network.ts';
import type { CaseResult } from './runner.ts';
import { sharedDir } from '../support/skip.ts';
import { formatReport, summaryLine } from './report.ts';

function usage(msg: string): never {
  process.stderr.write(`conformance: ${msg}\nusage: npm run conformance -- [--cases DIR] [--profile gateway|mesh] [--json] [--filter NAME[,NAME]]\n`);
  process.exit(2);
}

let values: { cases?: string; profile?: string; json?: boolean; filter?: string; quiet?: boolean };
try {
  values = parseArgs({
    args: process.argv.slice(2),
    options: { cases: { type: 'string' }, profile: { type: 'string' }, json: { type: 'boolean' }, filter: { type: 'string' }, quiet: { type: 'boolean' } },
    strict: true,
  }).values;
} catch (err) {
  usage((err as Error).message);
}
const root = resolve(values.cases ?? resolve(sharedDir, 'conformance/gateway-api'));
// Our transcriptions of upstream tests the shared corpus lacks use its manifests: only with it.
const corpus = new Corpus(root, values.cases === undefined ? [EXTRA_CASES] : []);
if (!corpus.exists()) usage(`no corpus at ${root} (expected cases/ and base/manifests.yaml)`);
if (values.profile !== undefined && values.profile !== 'gateway' && values.profile !== 'mesh') usage(`--profile must be gateway or mesh, got '${values.profile}'`);
const profiles: Profile[] = values.profile ? [values.profile as Profile] : ['gateway', 'mesh'];

const { cases, bad } = corpus.cases();
const filters = values.filter?.split(',').map((f) => f.trim().toLowerCase()).filter(Boolean) ?? [];
const selected = cases.filter((c) => filters.length === 0 || filters.some((f) => c.name.toLowerCase() === f || c.name.toLowerCase().includes(f)));
if (filters.length > 0 && selected.length === 0) usage(`--filter '${values.filter}' matches no case`);

const onSignal = (sig: string) => {
  killAll();
  removeNamespacesSync();
  process.stderr.write(`conformance: ${sig}, stopped every child process\n`);
  process.exit(130);
};
process.once('SIGINT', () => onSignal('SIGINT'));
process.once('SIGTERM', () => onSignal('SIGTERM'));
process.once('exit', () => {
  killAll();
  removeNamespacesSync();
});

const log = (msg: string) => {
  if (!values.quiet) process.stderr.write(`[conformance] ${msg}\n`);
};
const results: CaseResult[] = bad.map((b) => ({ name: b.file, profile: '?', outcome: 'failed' as const, reasons: [`unparsable case file: ${b.error}`], ms: 0 }));
for (const profile of profiles) {
  log(`profile ${profile}: ${selected.filter((c) => c.profile === profile).length} case files from ${root}`);
  const rs = await runProfile({
    corpus,
    profile,
    cases: selected,
    log,
    onResult: (r) => {
      if (!values.json) process.stdout.write(`${r.outcome.toUpperCase().padEnd(7)} ${r.profile}/${r.name} (${r.ms} ms)\n`);
    },
  });
  results.push(...rs);
}
if (values.json) {
  process.stdout.write(JSON.stringify({ corpus: root, profiles, results }, null, 2) + '\n');
  process.stderr.write(summaryLine(results) + '\n');
} else {
  process.stdout.write(formatReport(results, profiles));
}
process.exitCode = results.some((r) => r.outcome === 'failed') ? 1 : 0;
