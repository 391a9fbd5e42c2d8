/**
 * The end of `npm test`: from the reporter's lines (scripts/test-reporter.ts), the list of what did
 * not run (every skip with its reason and message), the headline lines tests emitted, and one
 * summary line counting skips by reason. Under CI=true a skip whose reason is not on the allowlist
 * (test/skip-allowlist.json) is unexpected and fails the run.
 */
import { readFileSync } from 'node:fs';
import type { ReportLine } from './test-reporter.ts';
import { parseSkip } from '../test/support/skip.ts';

/** One allowlist entry: skips with this reason (and, if given, whose file or name contains `test`) are expected in CI. */
export interface AllowedSkip {
  readonly reason: string;
  readonly test?: string;
  readonly why: string;
}

/** Reads and checks the allowlist: every entry names a reason and says why. */
export function loadAllowlist(path: string): AllowedSkip[] {
  const doc = JSON.parse(readFileSync(path, 'utf8')) as { allowed?: unknown };
  if (!Array.isArray(doc.allowed)) throw new Error(`${path}: "allowed" must be a list`);
  return doc.allowed.map((e: Partial<AllowedSkip>, i) => {
    if (typeof e?.reason !== 'string' || e.reason === '') throw new Error(`${path}: allowed[${i}].reason must be a reason id (see test/support/skip.ts)`);
    if (typeof e.why !== 'string' || e.why.trim() === '') throw new Error(`${path}: allowed[${i}] (${e.reason}) must say why in "why"`);
    if (e.test !== undefined && typeof e.test !== 'string') throw new Error(`${path}: allowed[${i}].test must be a string`);
    return { reason: e.reason, why: e.why, ...(e.test !== undefined ? { test: e.test } : {}) };
  });
}

/** Parses the reporter's JSON lines (one file per round). */
export function parseReport(text: string): ReportLine[] {
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as ReportLine);
}

export interface Skip {
  readonly reason: string;
  readonly message: string;
  readonly where: string;
  readonly allowed: boolean;
}

export interface Summary {
  readonly passed: number;
  readonly failed: number;
  readonly skips: readonly Skip[];
  readonly unexpected: readonly Skip[];
  readonly headlines: readonly string[];
  /** The closing text: skip list, headlines, summary line. */
  readonly text: string;
}

function isAllowed(allow: readonly AllowedSkip[], reason: string, where: string): boolean {
  return allow.some((a) => (a.reason.endsWith('*') ? reason.startsWith(a.reason.slice(0, -1)) : a.reason === reason) && (a.test === undefined || where.includes(a.test)));
}

/**
 * The test files that ran no test (a runner that stopped early, a file that never loaded its
 * tests). Judged from each file's own summary line, since a test defined in a shared support module
 * reports that module as its file.
 */
export function silentFiles(files: readonly string[], lines: readonly ReportLine[]): string[] {
  const ran = new Set(lines.flatMap((l) => (l.kind === 'file' && l.tests > 0 ? [l.file] : [])));
  return files.filter((f) => !ran.has(f));
}

/** Counts, the skip list and the summary line; `ci` makes skips off the allowlist unexpected. */
export function summarize(lines: readonly ReportLine[], allow: readonly AllowedSkip[], ci: boolean, elapsedMs: number): Summary {
  let passed = 0;
  let failed = 0;
  const skips: Skip[] = [];
  const headlines: string[] = [];
  for (const l of lines) {
    if (l.kind === 'summary') {
      headlines.push(l.text);
      continue;
    }
    if (l.kind === 'file') continue;
    if (l.outcome === 'skip' || l.outcome === 'todo') {
      const { reason, message } = l.outcome === 'todo' ? { reason: 'todo', message: l.message ?? '(todo)' } : parseSkip(l.message ?? true);
      const where = `${l.file}${l.line !== undefined ? `:${l.line}` : ''}: ${l.type === 'suite' ? 'suite ' : ''}${l.name}`;
      skips.push({ reason, message, where, allowed: isAllowed(allow, reason, where) });
    } else if (l.type === 'test') {
      if (l.outcome === 'pass') passed++;
      else failed++;
    }
  }
  const unexpected = ci ? skips.filter((s) => !s.allowed) : [];
  const byReason = new Map<string, number>();
  for (const s of skips) byReason.set(s.reason, (byReason.get(s.reason) ?? 0) + 1);
  const out: string[] = [];
  if (skips.length > 0) {
    out.push('', `did not run (${skips.length}):`);
    for (const s of skips) {
      const flag = s.allowed ? ' (allowed in CI)' : ci ? ' UNEXPECTED: not on test/skip-allowlist.json' : '';
      out.push(`  [${s.reason}] ${s.where}: ${s.message}${flag}`);
    }
  }
  out.push('');
  out.push(...headlines);
  const reasons = [...byReason].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([r, n]) => `${r} ${n}`).join(', ');
  const secs = Math.round(elapsedMs / 1000);
  out.push(
    `npm test: ${passed} passed, ${failed} failed, ${skips.length} skipped${reasons ? ` (${reasons})` : ''}, ` +
      `${ci ? `${unexpected.length} unexpected (CI=true)` : 'skips allowed (CI not set)'}, ${Math.floor(secs / 60)}m${String(secs % 60).padStart(2, '0')}s`,
  );
  return { passed, failed, skips, unexpected, headlines, text: out.join('\n') + '\n' };
}
