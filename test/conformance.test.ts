/**
 * Gateway API conformance in the normal suite: the whole corpus, both profiles, exactly what
 * `npm run conformance` runs (test/conformance/), against real `trellis control`, gateway proxies,
 * sidecars and echo processes. Every case file is a subtest: a failed case fails the suite, a
 * skipped one is a skip with its reason (under CI=true, unexpected unless allowlisted; the mesh
 * profile's pod-IP and Service-IP cases need transparent capture, so root). Ends with the
 * conformance line `N passed, M failed, K skipped` in the `npm test` summary, and checks that no
 * child process outlives the run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { Corpus, EXTRA_CASES } from './conformance/corpus.ts';
import { liveChildren } from './conformance/processes.ts';
import { runProfile } from './conformance/profile.ts';
import { summaryLine } from './conformance/report.ts';
import type { CaseResult } from './conformance/runner.ts';
import { parseSkip, sharedDir, skipBecause, skipUnlessShared, skipUnlessTransparentCapture, type SkipReason } from './support/skip.ts';

const corpus = new Corpus(resolve(sharedDir, 'conformance/gateway-api'), [EXTRA_CASES]);
const skip = skipUnlessShared('conformance/gateway-api/cases', 'conformance/gateway-api/base/manifests.yaml');

/** The skip of a skipped case, with a reason id: a missing prerequisite's own (root, tool:ip, ...) or the runner's. */
function caseSkip(r: CaseResult): string {
  const why = r.reasons.join('; ');
  if (r.skipKind === 'needs-transparent-capture') {
    const prerequisite = skipUnlessTransparentCapture();
    return skipBecause(prerequisite ? (parseSkip(prerequisite).reason as SkipReason) : 'conformance:needs-transparent-capture', why);
  }
  return skipBecause(`conformance:${r.skipKind ?? 'skipped'}`, why);
}

test('conformance: the full corpus, gateway and mesh profiles (npm run conformance)', { skip, timeout: 900_000 }, async (t) => {
  const { cases, bad } = corpus.cases();
  assert.deepEqual(bad.map((b) => `${b.file}: ${b.error}`), [], 'every case file parses');
  assert.ok(cases.length > 50, `only ${cases.length} case files`);
  const all: CaseResult[] = [];
  for (const profile of ['gateway', 'mesh'] as const) {
    const log: string[] = [];
    const t0 = Date.now();
    const rs = await runProfile({ corpus, profile, cases, log: (m) => log.push(m) });
    assert.equal(liveChildren(), 0, 'no child process left behind');
    assert.equal(rs.length, cases.filter((c) => c.profile === profile).length, `${profile}: one result per case file`);
    for (const r of rs) {
      await t.test(`${r.profile}/${r.name}`, { skip: r.outcome === 'skipped' ? caseSkip(r) : false }, () => {
        if (r.outcome === 'failed') assert.fail(`${r.reasons.join('\n')}\n--- runner log (last 40 lines) ---\n${log.slice(-40).join('\n')}`);
      });
    }
    t.diagnostic(`conformance ${profile}: ${summaryLine(rs)} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    all.push(...rs);
  }
  t.diagnostic(`[summary] conformance (full corpus, ${all.length} case files): ${summaryLine(all)}`);
});
