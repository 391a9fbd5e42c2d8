/**
 * One profile's run: selects its case files, plans what the environment must start (Gateways the
 * cases use, every object they apply), starts it once, runs the cases in order, and always tears
 * the environment down. The entry point (run.ts) and the suite test (test/conformance.test.ts)
 * both call `runProfile`.
 */
import type { CaseFile, Corpus, Profile } from './corpus.ts';
import { objectsOf } from './corpus.ts';
import { Environment, type Capture } from './environment.ts';
import { transparentUnavailable } from './pod-network.ts';
import { CaseRunner, caseObjects, gatewaysOf, skipReason, type CaseResult } from './runner.ts';

export interface ProfileOptions {
  corpus: Corpus;
  profile: Profile;
  cases: CaseFile[];
  log: (msg: string) => void;
  /** Called after each case file. */
  onResult?: (r: CaseResult) => void;
  /** Mesh profile capture; default transparent where it can run (root, ip/iptables, addon), else explicit. */
  capture?: Capture;
}

/** Runs the cases of one profile; never leaves processes behind. */
export async function runProfile(opts: ProfileOptions): Promise<CaseResult[]> {
  const { corpus, profile, log } = opts;
  const cases = opts.cases.filter((c) => c.profile === profile);
  if (cases.length === 0) return [];
  const base = objectsOf(corpus.baseText(profile));
  const unavailable = profile === 'mesh' ? transparentUnavailable() : undefined;
  const capture: Capture = profile !== 'mesh' ? 'explicit' : opts.capture ?? (unavailable === undefined ? 'transparent' : 'explicit');
  const explicitWhy = unavailable ?? 'explicit capture was asked for';
  if (profile === 'mesh') log(`mesh profile: ${capture} capture${capture === 'explicit' ? ` (${explicitWhy})` : ''}`);
  const runnable = cases.filter((c) => skipReason(c, capture, explicitWhy) === undefined);
  const allCaseObjects = runnable.flatMap((c) => caseObjects(corpus, c, () => []));
  const gateways = [...new Set(runnable.flatMap((c) => gatewaysOf(c)))].sort();
  const results: CaseResult[] = [];
  let env: Environment | undefined;
  try {
    env = await Environment.start({ profile, base, allCaseObjects, gateways, capture, log });
    const runner = new CaseRunner(env, corpus, base, log, explicitWhy);
    for (const c of cases) {
      let r: CaseResult;
      try {
        r = await runner.run(c);
      } catch (err) {
        r = { name: c.name, profile, outcome: 'failed', reasons: [`runner error: ${(err as Error).stack ?? String(err)}`], ms: 0 };
      }
      results.push(r);
      opts.onResult?.(r);
    }
  } catch (err) {
    const msg = `environment failed: ${(err as Error).message}`;
    for (const c of cases.slice(results.length)) {
      const r: CaseResult = { name: c.name, profile, outcome: 'failed', reasons: [msg], ms: 0 };
      results.push(r);
      opts.onResult?.(r);
    }
  } finally {
    await env?.close();
  }
  return results;
}
