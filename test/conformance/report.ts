/**
 * The human report of a conformance run: per-profile counts, failures and skips by name with
 * their reasons, and the closing `N passed, M failed, K skipped` line (always the last line).
 */
import type { CaseResult } from './runner.ts';

/** `N passed, M failed, K skipped`. */
export function summaryLine(results: readonly CaseResult[]): string {
  const n = (o: string) => results.filter((r) => r.outcome === o).length;
  return `${n('passed')} passed, ${n('failed')} failed, ${n('skipped')} skipped`;
}

/** The full text report, ending with the summary line. */
export function formatReport(results: readonly CaseResult[], profiles: readonly string[]): string {
  const lines: string[] = [''];
  for (const p of profiles) {
    const rs = results.filter((r) => r.profile === p);
    lines.push(`profile ${p}: ${summaryLine(rs)}`);
  }
  const failed = results.filter((r) => r.outcome === 'failed');
  if (failed.length > 0) {
    lines.push('', 'FAILED:');
    for (const r of failed) {
      lines.push(`  ${r.profile}/${r.name}`);
      for (const why of r.reasons) lines.push(`    - ${why.split('\n').join('\n      ')}`);
    }
  }
  const skipped = results.filter((r) => r.outcome === 'skipped');
  if (skipped.length > 0) {
    lines.push('', 'SKIPPED:');
    for (const r of skipped) lines.push(`  ${r.profile}/${r.name}: ${r.reasons.join('; ')}`);
  }
  lines.push('', summaryLine(results));
  return lines.join('\n') + '\n';
}
