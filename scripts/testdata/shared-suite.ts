/** A suite defined outside the test file that runs it (as test/support/demo-suite.ts is). */
import { test } from 'node:test';

export function sharedSuite(): void {
  test('a test defined in a support module', () => {});
}
