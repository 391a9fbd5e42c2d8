/**
 * CPU time and resident memory of the proxy processes only, read from /proc. A proxy is a set
 * of process groups (nginx's master + worker, a node wrapper, two proxies for a 2-hop path);
 * every process whose `pgrp` (field 5 of /proc/PID/stat) is one of them is counted. CPU is
 * utime + stime (fields 14, 15) in clock ticks; RSS is VmRSS from /proc/PID/status.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

let ticks: number | undefined;

function clockTicks(): number {
  if (ticks === undefined) {
    const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const n = Number(out.stdout?.trim());
    ticks = Number.isFinite(n) && n > 0 ? n : 100;
  }
  return ticks;
}

interface StatLine { pid: number; pgrp: number; cpuTicks: number }

function readStat(pid: string): StatLine | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may contain spaces and parentheses: split after the last ')'.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state): field N is rest[N - 3].
    return { pid: Number(pid), pgrp: Number(rest[2]), cpuTicks: Number(rest[11]) + Number(rest[12]) };
  } catch {
    return undefined;
  }
}

/** Pids of every live process in the given process groups. */
export function groupPids(pgids: readonly number[]): number[] {
  const want = new Set(pgids);
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(name);
    if (s !== undefined && want.has(s.pgrp)) out.push(s.pid);
  }
  return out;
}

/** Total CPU seconds (user + system) used so far by the processes in these groups. */
export function groupCpuSeconds(pgids: readonly number[]): number {
  const want = new Set(pgids);
  let total = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(name);
    if (s !== undefined && want.has(s.pgrp)) total += s.cpuTicks;
  }
  return total / clockTicks();
}

/** Total resident memory in MB of the processes in these groups. */
export function groupRssMb(pgids: readonly number[]): number {
  let kb = 0;
  for (const pid of groupPids(pgids)) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) kb += Number(m[1]);
    } catch {
      // exited meanwhile
    }
  }
  return kb / 1024;
}

/** Pids of every live process whose command line mentions `needle` (leak check in tests). */
export function pidsMatching(needle: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(needle)) out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}
