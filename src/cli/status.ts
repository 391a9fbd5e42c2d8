/**
 * `trellis status`: what `trellis up` runs, from the state dir: one row per process (role,
 * workload, replica, pid, alive), for proxies their readiness (GET /healthz/ready on the health
 * port) and xDS sync state from the control plane's `/debug/syncz`, and the ports. `-o json`
 * prints the same as JSON.
 */
import { UsageError } from './args.ts';
import type { Verb } from './main.ts';
import { status as spec } from './commands-run.ts';
import { parseCommand } from './spec.ts';
import { alive } from '../runtime/child.ts';
import { readState } from '../runtime/state.ts';
import { runningState, meshListDir, resolveStateDir } from '../runtime/meshes.ts';
import { httpJson, httpStatus } from '../runtime/wait.ts';
import type { Diagnostic } from '../config/resource.ts';

interface Row {
  role: string;
  name: string;
  workload?: string;
  replica?: string;
  pid: number;
  alive: boolean;
  ready?: boolean;
  sync?: string;
  ports: Record<string, number>;
}

function syncOf(entry: Record<string, unknown> | undefined): string {
  if (entry === undefined) return 'NOT CONNECTED';
  const types = (entry.types ?? {}) as Record<string, { state?: string; status?: string }>;
  const states = Object.entries(types).map(([t, v]) => [t, v.state ?? v.status ?? '?'] as const);
  const bad = states.filter(([, s]) => s !== 'SYNCED');
  return bad.length === 0 ? 'SYNCED' : bad.map(([t, s]) => `${t}:${s}`).join(',');
}

export const verb: Verb = {
  async run(args: string[]): Promise<number> {
    const { values } = parseCommand(spec, args);
    if (values.output !== 'table' && values.output !== 'json') throw new UsageError(`status: -o must be table or json, not '${values.output}'`);
    const { stateDir, source } = resolveStateDir(values['state-dir'], { requireLive: true });
    const state = runningState(readState(stateDir));
    if (state === undefined) {
      if (values.output === 'json') process.stdout.write(JSON.stringify({ running: false }) + '\n');
      else if (source === 'default') process.stdout.write(`trellis status: nothing is running (no mesh in ./${stateDir}, and no other mesh of this user in ${meshListDir()}); start one with \`trellis up\`\n`);
      else process.stdout.write(`trellis status: nothing is running (state dir ${stateDir})\n`);
      return 1;
    }
    const debugPort = state.controlDebugPort;
    const [syncz, diagnostics] = debugPort !== undefined ? await Promise.all([httpJson(debugPort, '/debug/syncz'), httpJson(debugPort, '/debug/diagnostics')]) : [undefined, undefined];
    const byId = new Map<string, Record<string, unknown>>();
    if (Array.isArray(syncz)) for (const e of syncz as Record<string, unknown>[]) if (typeof e.id === 'string') byId.set(e.id, e);
    // Config problems the control plane works around (a duplicate name, a broken file whose last
    // good version still serves): shown here so they are not only in a log.
    const problems = (Array.isArray(diagnostics) ? (diagnostics as Diagnostic[]) : []).filter((d) => d.severity !== 'info');
    const rows = await Promise.all(state.processes.map(async (p): Promise<Row> => {
      const row: Row = { role: p.role, name: p.name, workload: p.workload, replica: p.replica, pid: p.pid, alive: alive(p.pid), ports: p.ports };
      if (p.role === 'gateway' || p.role === 'sidecar') {
        row.ready = p.ports.health !== undefined && (await httpStatus(p.ports.health, '/healthz/ready', 1000, p.address)) === 200;
        row.sync = p.nodeId !== undefined ? syncOf(byId.get(p.nodeId)) : undefined;
      } else if (p.role === 'control') {
        row.ready = debugPort !== undefined && (await httpStatus(debugPort, '/ready')) === 200;
      }
      return row;
    }));
    if (values.output === 'json') {
      process.stdout.write(JSON.stringify({ running: true, stateDir: state.stateDir, phase: state.phase, gatewayUrl: state.gatewayUrl, capture: state.capture, controlDebugPort: state.controlDebugPort, processes: rows, configProblems: problems }, null, 2) + '\n');
      return 0;
    }
    const lines = [`mesh ${state.phase} from ${state.stateDir} (${state.capture} capture); gateway ${state.gatewayUrl ?? '(none)'}; supervisor pid ${state.supervisorPid}`, ''];
    const head = ['ROLE', 'WORKLOAD', 'REPLICA', 'PID', 'ALIVE', 'READY', 'XDS', 'PORTS'];
    const table = rows.map((r) => [r.role, r.workload ?? '-', r.replica ?? r.name, String(r.pid), r.alive ? 'yes' : 'NO',
      r.ready === undefined ? '-' : r.ready ? 'yes' : 'NO', r.sync ?? '-', Object.entries(r.ports).map(([k, v]) => `${k}=${v}`).join(' ')]);
    const widths = head.map((h, i) => Math.max(h.length, ...table.map((t) => t[i].length)));
    for (const t of [head, ...table]) lines.push(t.map((c, i) => (i === t.length - 1 ? c : c.padEnd(widths[i]))).join('  '));
    if (problems.length > 0) {
      lines.push('', `config problems (${problems.length}; the rest of the config is served):`);
      for (const d of problems.slice(0, 5)) lines.push(`  ${d.severity} ${d.code}${d.file !== undefined ? ` ${d.file}${d.line !== undefined ? `:${d.line}` : ''}` : ''}: ${d.message}`);
      if (problems.length > 5) lines.push(`  ... all of them: http://127.0.0.1:${debugPort}/debug/diagnostics`);
    }
    process.stdout.write(lines.join('\n') + '\n');
    return 0;
  },
};
