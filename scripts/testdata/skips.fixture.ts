// Run by scripts/test-summary.test.ts through `npm test -- <this file>`: one test that runs, one
// skip with a reason id, one without.
import { describe, test } from 'node:test';
import { skipBecause } from '../../test/support/skip.ts';

test('runs', (t) => {
  t.diagnostic('[summary] fixture: headline line');
});
test('needs a tool nobody has', { skip: skipBecause('tool:no-such-tool', 'needs no-such-tool on PATH') }, () => {});
describe('a suite skipped without a reason id', { skip: 'just because' }, () => {
  test('inner', () => {});
});
