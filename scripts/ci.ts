/**
 * Whether this run is CI (`CI` set to true/1/yes, as GitHub Actions, GitLab and most CI systems
 * do). Under CI the build and the suite are strict: a native addon that fails to build, a missing
 * `../shared`, or a skip not on test/skip-allowlist.json fails the run instead of warning.
 */
export function isCI(env: NodeJS.ProcessEnv = process.env): boolean {
  return /^(1|true|yes)$/i.test(env.CI ?? '');
}
