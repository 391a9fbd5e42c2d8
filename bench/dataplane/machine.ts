/**
 * The machine description recorded with every result: core count, CPU model, memory, load at
 * start, and the version of every tool the bench runs.
 */
import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { spawnSync } from 'node:child_process';

function firstLine(cmd: string | undefined, args: string[]): string {
  if (cmd === undefined) return 'not installed';
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 15000 });
  const text = `${r.stdout ?? ''}\n${r.stderr ?? ''}`.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return text.find((l) => /version|\d+\.\d+/i.test(l)) ?? text[0] ?? 'unknown';
}

/** The load average now, as results record it ("1.00 0.50 0.25"). */
export function loadavgNow(): string {
  return loadavg().map((x) => x.toFixed(2)).join(' ');
}

/** nproc, CPU model, memory, load average and tool versions. */
export function describeMachine(tools: Record<string, string | undefined>, envoyBin: string | undefined, node: string): Record<string, string> {
  let model = cpus()[0]?.model ?? 'unknown';
  try {
    model = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? model;
  } catch { /* not Linux */ }
  return {
    nproc: String(cpus().length),
    cpu: model,
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    loadavgAtStart: loadavgNow(),
    node: firstLine(node, ['--version']),
    envoy: firstLine(envoyBin, ['--version']),
    nginx: firstLine(tools.nginx, ['-v']),
    haproxy: firstLine(tools.haproxy, ['-v']),
    fortio: firstLine(tools.fortio, ['version']),
    wrk: firstLine(tools.wrk, ['-v']),
    h2load: firstLine(tools.h2load, ['--version']),
    openssl: firstLine(tools.openssl, ['version']),
    go: firstLine(tools.go, ['version']),
  };
}
