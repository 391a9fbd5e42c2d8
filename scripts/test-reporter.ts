/**
 * A node:test reporter for `npm test` (scripts/test.ts runs it next to the spec reporter): writes
 * one JSON line per finished test or suite (outcome, skip/todo message, file, name) and per
 * `[summary] ...` diagnostic, so the runner can count skips by reason, hold them against the
 * allowlist under CI=true, and print the headline lines tests emit (e.g. the conformance totals).
 */
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One line of the reporter's output. */
export type ReportLine =
  | { kind: 'test'; outcome: 'pass' | 'fail' | 'skip' | 'todo'; type: 'test' | 'suite'; file: string; name: string; line?: number; message?: string }
  | { kind: 'summary'; file: string; text: string }
  /** A test file finished: how many tests it ran. Tests defined in a shared support module carry that module as their `file`, so this is the only record of which test file ran them. */
  | { kind: 'file'; file: string; tests: number };

/** Prefix of a test diagnostic (`t.diagnostic('[summary] ...')`) that `npm test` repeats in its summary. */
export const SummaryPrefix = '[summary] ';

interface TestEventData {
  name?: string;
  file?: string;
  line?: number;
  nesting?: number;
  message?: string;
  skip?: string | boolean;
  todo?: string | boolean;
  details?: { type?: 'test' | 'suite' };
  counts?: { tests?: number };
}

const root = fileURLToPath(new URL('..', import.meta.url));
const where = (file: string | undefined) => (file === undefined ? '' : file.startsWith(root) ? relative(root, file) : file);

export default async function* reporter(source: AsyncIterable<{ type: string; data: TestEventData }>): AsyncGenerator<string> {
  for await (const { type, data } of source) {
    if (type === 'test:pass' || type === 'test:fail') {
      const skip = data.skip !== undefined && data.skip !== false;
      const todo = data.todo !== undefined && data.todo !== false;
      const outcome = skip ? 'skip' : todo ? 'todo' : type === 'test:pass' ? 'pass' : 'fail';
      const message = skip ? data.skip : todo ? data.todo : undefined;
      const line: ReportLine = {
        kind: 'test', outcome, type: data.details?.type ?? 'test', file: where(data.file), name: data.name ?? '', line: data.line,
        ...(typeof message === 'string' ? { message } : {}),
      };
      yield `${JSON.stringify(line)}\n`;
    } else if (type === 'test:summary' && data.file !== undefined) {
      yield `${JSON.stringify({ kind: 'file', file: where(data.file), tests: data.counts?.tests ?? 0 } satisfies ReportLine)}\n`;
    } else if (type === 'test:diagnostic' && data.message?.startsWith(SummaryPrefix)) {
      yield `${JSON.stringify({ kind: 'summary', file: where(data.file), text: data.message.slice(SummaryPrefix.length) } satisfies ReportLine)}\n`;
    }
  }
}
