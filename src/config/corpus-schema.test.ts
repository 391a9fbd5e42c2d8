/**
 * Runs the loader over every `test/config-corpus/bad/schema-*.yaml` file: each must produce
 * the codes its first line announces (`# expect: CODE[, CODE]`), as errors naming the file and
 * a line, never throw, and finish without blowing up (huge and deeply nested inputs included): each
 * file within 5 s of CPU time, about 10x the slowest idle figure (schema-huge-document.yaml, ~450 ms).
 * CPU time, not wall time: on a loaded 2-core machine the same parse took 3.8 s of wall time. The
 * slowest files and their times are printed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parseConfigText } from './load.ts';

const dir = fileURLToPath(new URL('../../test/config-corpus/bad/', import.meta.url));
const files = readdirSync(dir).filter((f) => f.startsWith('schema-') && /\.ya?ml$/.test(f)).sort();
const parseMs = new Map<string, number>();

test('the schema corpus has at least 40 files', () => {
  assert.ok(files.length >= 40, `${files.length} files`);
});

for (const f of files) {
  test(`corpus ${f}`, () => {
    const text = readFileSync(join(dir, f), 'utf8');
    const m = /^# expect: (.+)$/m.exec(text.split('\n', 1)[0]);
    assert.ok(m, 'first line must be "# expect: CODE"');
    const expected = m[1].split(',').map((s) => s.trim());
    const cpu0 = process.cpuUsage();
    const r = parseConfigText(text, f);
    const cpu = process.cpuUsage(cpu0);
    const ms = (cpu.user + cpu.system) / 1000;
    parseMs.set(f, ms);
    assert.ok(ms < 5000, `took ${ms.toFixed(0)} ms of CPU (idle: under 0.5 s)`);
    const codes = new Set(r.diagnostics.map((d) => d.code));
    for (const code of expected) assert.ok(codes.has(code), `expected ${code}, got ${[...codes].join(', ') || 'nothing'}`);
    for (const d of r.diagnostics.filter((x) => expected.includes(x.code))) {
      assert.equal(d.severity, 'error');
      assert.equal(d.file, f);
      assert.ok(typeof d.line === 'number' && d.line >= 1, `line ${d.line}`);
    }
    assert.ok(r.rejected.length >= 1, 'a bad document must be listed as rejected');
  });
}

test('parse times (printed)', (t) => {
  const slowest = [...parseMs].sort((a, b) => b[1] - a[1]).slice(0, 3);
  t.diagnostic(`slowest schema corpus files (CPU time): ${slowest.map(([f, ms]) => `${f} ${ms.toFixed(0)} ms`).join(', ')}`);
});
