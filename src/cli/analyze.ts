/**
 * `trellis analyze PATH...`: loads mesh configuration from files, directories or stdin (`-`),
 * validates each document against its schema (src/config/load.ts), then runs the semantic
 * analyzers over the whole set (src/config/analyze), and prints every finding with file, line,
 * resource, code and field — the `istioctl analyze` of Trellis. Exit code: 0 no errors (warnings
 * allowed), 1 errors found, 2 usage error (including a path that does not exist, since then
 * nothing the user meant was analyzed).
 */
import { statSync } from 'node:fs';
import { analyzeConfig, compareDiagnostics, type AnalyzeOptions, type ObservedPlaintext } from '../config/analyze/index.ts';
import { meshSidecars, observedPlaintext } from './mtls.ts';
import { DEFAULT_STATE_DIR } from '../runtime/meshes.ts';
import { loadConfigPaths } from '../config/load.ts';
import { hasCode } from '../errors.ts';
import { readMeshConfig, type MeshConfigSettings } from '../config/mesh-config.ts';
import type { Diagnostic, Resource } from '../config/resource.ts';
import { UsageError } from './args.ts';
import type { Verb } from './main.ts';
import { analyze as spec } from './commands-inspect.ts';
import { parseCommand } from './spec.ts';

/** Summary counts of one analysis. */
export interface AnalyzeSummary {
  readonly errors: number;
  readonly warnings: number;
  readonly infos: number;
  readonly resources: number;
  /** Documents that failed schema validation and were left out of the semantic checks. */
  readonly rejected: number;
  readonly files: number;
}

function summarize(diags: readonly Diagnostic[], resources: number, rejected: number, files: number): AnalyzeSummary {
  let errors = 0;
  let warnings = 0;
  let infos = 0;
  for (const d of diags) {
    if (d.severity === 'error') errors++;
    else if (d.severity === 'warning') warnings++;
    else infos++;
  }
  return { errors, warnings, infos, resources, rejected, files };
}

/** One line per diagnostic: `path:line  severity  CODE  Kind ns/name  message  (field: x)`. */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.file === undefined ? '<input>' : d.line === undefined ? d.file : `${d.file}:${d.line}`;
  const res = d.resource ? `  ${d.resource.kind} ${d.resource.namespace}/${d.resource.name}` : '';
  const field = d.fieldPath ? `  (field: ${d.fieldPath})` : '';
  return `${where}  ${d.severity.padEnd(7)}  ${d.code}${res}  ${d.message}${field}`;
}

/**
 * Plaintext traffic of the running mesh's sidecars (none when no mesh runs); unreadable sidecars
 * are said on stderr. Only the mesh named by --state-dir, TRELLIS_STATE_DIR or the current
 * directory's: analysing files must not pick up another mesh that happens to run on the machine.
 */
async function liveTraffic(admin: string[] | undefined, stateDirFlag: string | undefined, minutes: number): Promise<{ observed: ObservedPlaintext[] }> {
  const stateDir = stateDirFlag ?? (process.env.TRELLIS_STATE_DIR || DEFAULT_STATE_DIR);
  const targets = admin !== undefined && admin.length > 0 ? admin.map((a) => ({ workload: a, admin: a })) : meshSidecars(stateDir) ?? [];
  if (targets.length === 0) return { observed: [] };
  const { observed, errors } = await observedPlaintext(targets, minutes);
  for (const e of errors) process.stderr.write(`trellis analyze: cannot read sidecar counters: ${e}\n`);
  return { observed };
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Reads `--mesh-config FILE`; a file that cannot be read or used is a usage error (exit 2). */
export function meshConfigOption(file: string): MeshConfigSettings {
  try {
    return readMeshConfig(file);
  } catch (err) {
    if (hasCode(err, 'MESH_CONFIG_INVALID')) throw new UsageError(`analyze: --mesh-config ${err.message}`);
    throw err;
  }
}

/** Runs the semantic checks over loaded configuration; every diagnostic, schema ones included, sorted. */
export function analyzeLoaded<L extends { resources: readonly Resource[]; diagnostics: readonly Diagnostic[] }>(loaded: L, opts: AnalyzeOptions = {}) {
  const semantic = analyzeConfig(loaded.resources, opts);
  return { loaded, diagnostics: [...loaded.diagnostics, ...semantic].sort(compareDiagnostics) };
}

/** Loads `paths` and runs schema and semantic checks, as `trellis analyze` does. */
export async function analyzePaths(paths: readonly string[], opts: AnalyzeOptions = {}) {
  return analyzeLoaded(await loadConfigPaths([...paths]), opts);
}

export const verb: Verb = {
  async run(args: string[]): Promise<number> {
    const { values, positionals } = parseCommand(spec, args);
    const output = values.output;
    if (output !== 'text' && output !== 'json') throw new UsageError(`analyze: --output must be text or json, not '${output}'`);
    if (positionals.length === 0 && values.kubeconfig === undefined) throw new UsageError('analyze: no PATH given (use - for stdin); see trellis analyze --help');
    for (const p of positionals) {
      if (p === '-') continue;
      try {
        statSync(p);
      } catch {
        throw new UsageError(`analyze: ${p}: no such file or directory`);
      }
    }

    const minutes = Number(values.minutes);
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > 15) throw new UsageError(`analyze: --minutes must be 1..15, got '${values.minutes}'`);
    const mesh = values['mesh-config'] === undefined ? undefined : meshConfigOption(values['mesh-config']);
    const traffic = await liveTraffic(values.admin, values['state-dir'], minutes);
    const opts = { domainSuffix: values['domain-suffix'], ...(mesh !== undefined ? { mesh } : {}), observedPlaintext: traffic.observed };
    const { loaded, diagnostics } = values.kubeconfig !== undefined
      // Loaded only when asked: the Kubernetes client is not part of a plain file analysis.
      ? analyzeLoaded({ ...(await (await import('../control/kube/cluster-analysis.ts')).loadClusterConfig(values.kubeconfig)), rejected: [] }, opts)
      : await analyzePaths(positionals, opts);
    const files = new Set<string>();
    for (const r of loaded.resources) if (r.source?.file !== undefined) files.add(r.source.file);
    for (const d of diagnostics) if (d.file !== undefined) files.add(d.file);
    const summary = summarize(diagnostics, loaded.resources.length, loaded.rejected.length, files.size);

    if (output === 'json') {
      process.stdout.write(JSON.stringify({ diagnostics, summary }, null, 2) + '\n');
    } else {
      const shown = values.verbose ? diagnostics : diagnostics.filter((d) => d.severity !== 'info');
      const lines = shown.map(formatDiagnostic);
      const tail = `${plural(summary.errors, 'error')}, ${plural(summary.warnings, 'warning')}` +
        (summary.infos > 0 ? `, ${summary.infos} info${values.verbose ? '' : ' (shown with --verbose)'}` : '') +
        ` in ${plural(summary.resources, 'resource')} from ${plural(summary.files, 'file')}` +
        (summary.rejected > 0 ? ` (${plural(summary.rejected, 'document')} rejected by schema checks, not analyzed further)` : '');
      lines.push(summary.errors + summary.warnings === 0 ? `✔ no problems: ${tail}` : tail);
      process.stdout.write(lines.join('\n') + '\n');
    }
    return summary.errors > 0 ? 1 : 0;
  },
};
