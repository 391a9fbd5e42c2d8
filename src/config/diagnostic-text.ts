/**
 * Keeping what a bad config file says out of our logs at any size: a diagnostic's message can
 * quote the input (the YAML parser quotes whole tokens), and a config directory can hold anything
 * (a 5 MB file of random bytes once wrote 13 MB of raw binary into the control plane's log). Here
 * messages are bounded and escaped, a file's diagnostics are capped, and a file that is not text
 * is recognized before it is parsed at all.
 */
import type { Diagnostic } from './resource.ts';

/** Longest message a diagnostic keeps. */
export const MaxMessageChars = 300;
/** Diagnostics kept per file and document parse; the rest is summarized in one. */
export const MaxDiagnosticsPerFile = 20;

/** Control characters (but tab), DEL and C1 controls, the replacement character, lone surrogates. */
const UNPRINTABLE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\ufffd]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

const HAS_UNPRINTABLE = new RegExp(UNPRINTABLE.source);

/** `text` with unprintable characters escaped (`\n`, `\x01`, `\ufffd`) and cut to `max` characters. */
export function boundedText(text: string, max = MaxMessageChars): string {
  const head = text.length > max * 2 ? text.slice(0, max * 2) : text;
  let out = head.replace(UNPRINTABLE, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
  if (out.length > max || head.length < text.length) out = `${out.slice(0, max)}... (${text.length} characters)`;
  return out;
}

/** Why `text` (a config file read as UTF-8) is not text, or undefined when it is. */
export function notText(text: string): string | undefined {
  const sample = text.length > 65_536 ? text.slice(0, 65_536) : text;
  if (sample.includes('\u0000')) return 'contains NUL bytes';
  let odd = 0;
  for (const _ of sample.matchAll(/[\u0001-\u0008\u000e-\u001f\ufffd]/g)) odd++;
  // YAML allows none of these; a few are a typo the parser will point at, many are binary data.
  return odd > 8 && odd * 100 > sample.length ? `${odd} of its first ${sample.length} characters are control characters or invalid UTF-8` : undefined;
}

/** Messages bounded and escaped; past `max` per file, one INFO diagnostic says how many more there were. */
export function tidyDiagnostics(list: readonly Diagnostic[], max = MaxDiagnosticsPerFile): Diagnostic[] {
  const perFile = new Map<string, number>();
  const out: Diagnostic[] = [];
  const dropped = new Map<string, number>();
  for (const d of list) {
    const key = d.file ?? '';
    const n = (perFile.get(key) ?? 0) + 1;
    perFile.set(key, n);
    if (n > max) {
      dropped.set(key, (dropped.get(key) ?? 0) + 1);
      continue;
    }
    out.push(d.message.length > MaxMessageChars || HAS_UNPRINTABLE.test(d.message) ? { ...d, message: boundedText(d.message) } : d);
  }
  for (const [file, n] of dropped) {
    out.push({ severity: 'info', code: 'MORE_DIAGNOSTICS', message: `${n} more diagnostics for this file not shown`, ...(file !== '' ? { file } : {}) });
  }
  return out;
}
