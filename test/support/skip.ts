/**
 * The one way a test skips: with a stable reason id and a message saying what is missing, as the
 * `skip` option string `[reason] message` (or `t.skip(skipBecause(...))`). `npm test`
 * (scripts/test.ts) counts skips by reason, lists them at the end, and with CI=true fails on any
 * skip whose reason is not in test/skip-allowlist.json: a green CI run means every test ran.
 *
 * Reason ids: `tool:<name>[,<name>...]` (an outside tool missing, or Envoy not the pinned
 * version), `root`, `shared-data` (`../shared` next to the checkout), `native-addon` (the
 * node-gyp addons built by `npm ci`), `platform:linux`, `conformance:<why>` (a conformance case
 * the runner cannot evaluate). A skip without a reason id counts as `untagged`, never allowed.
 *
 * @example
 *   test('proxies through Envoy', { skip: skipUnlessTools('envoy') }, async () => { ... });
 *   describe('transparent capture', { skip: skipUnlessTransparentCapture() }, () => { ... });
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { envoyMismatch, findTool } from './tools.ts';
import { TransparentTools, transparentSupport, which } from '../../src/runtime/netns.ts';
import { originalDstSupport } from '../../src/proxy/listener/original-dst.ts';

export type SkipReason = `tool:${string}` | 'root' | 'shared-data' | 'native-addon' | 'platform:linux' | `conformance:${string}`;

/** Reason given to a skip that carries no `[reason]` prefix. */
export const UntaggedReason = 'untagged';

/** The `skip` option string for `reason`. */
export function skipBecause(reason: SkipReason, message: string): string {
  return `[${reason}] ${message}`;
}

/** `{ skip: skipIf(cond, reason, message) }`: false when `cond` is false. */
export function skipIf(cond: boolean, reason: SkipReason, message: string): false | string {
  return cond ? skipBecause(reason, message) : false;
}

/** Splits a reported skip (`true` or a message) into its reason id and message. */
export function parseSkip(skip: string | boolean): { reason: string; message: string } {
  const text = typeof skip === 'string' ? skip : '';
  const m = /^\[([a-z0-9][a-z0-9:._,+-]*)\]\s*(.*)$/s.exec(text);
  return m === null ? { reason: UntaggedReason, message: text || '(no message)' } : { reason: m[1], message: m[2] };
}

/**
 * False when every tool is found (Envoy: at the version pinned in scripts/tool-versions.sh),
 * otherwise a `tool:` skip naming what is missing and how CI installs it.
 */
export function skipUnlessTools(...names: string[]): false | string {
  const missing = names.filter((n) => (n === 'envoy' ? envoyMismatch() !== undefined : findTool(n) === undefined));
  if (missing.length === 0) return false;
  const envoy = missing.includes('envoy') ? envoyMismatch() : undefined;
  const others = missing.filter((n) => n !== 'envoy');
  const parts = [...(envoy !== undefined ? [envoy] : []), ...(others.length > 0 ? [`needs ${others.join(', ')} on PATH`] : [])];
  return skipBecause(`tool:${missing.join(',')}`, `${parts.join('; ')} (installed by scripts/install-tools.sh)`);
}

/** False when running as root, otherwise a `root` skip saying what needs it. */
export function skipUnlessRoot(what: string): false | string {
  return skipIf(process.getuid?.() !== 0, 'root', `needs root (${what})`);
}

/** False on Linux, otherwise a `platform:linux` skip saying what needs it. */
export function skipUnlessLinux(what: string): false | string {
  return skipIf(process.platform !== 'linux', 'platform:linux', `needs Linux (${what})`);
}

/**
 * The real test data (conformance corpus, Istio samples, ...): `../shared` next to the repository,
 * or TRELLIS_SHARED_DIR (a checkout elsewhere; also how to see what a run without it skips).
 */
export const sharedDir = resolve(process.env.TRELLIS_SHARED_DIR || resolve(fileURLToPath(new URL('../../', import.meta.url)), '../shared'));

/** False when every path (relative to `../shared`) exists, otherwise a `shared-data` skip naming the first missing one. */
export function skipUnlessShared(...paths: string[]): false | string {
  const missing = paths.find((p) => !existsSync(resolve(sharedDir, p)));
  return missing === undefined ? false : skipBecause('shared-data', `needs ${resolve(sharedDir, missing)} (the shared test data: ../shared next to the repository, or TRELLIS_SHARED_DIR)`);
}

/** False when `why` is undefined (the addon loaded), otherwise a `native-addon` skip with it. */
export function skipUnlessAddon(why: string | undefined): false | string {
  return why === undefined ? false : skipBecause('native-addon', why);
}

/**
 * False when transparent capture can run here (Linux, root, ip/iptables/setpriv/ss, the
 * SO_ORIGINAL_DST addon), otherwise the skip for the first thing missing.
 */
export function skipUnlessTransparentCapture(): false | string {
  const why = transparentSupport();
  if (why === undefined) return false;
  if (process.platform !== 'linux') return skipBecause('platform:linux', why);
  if (process.getuid?.() !== 0) return skipBecause('root', why);
  const tools = TransparentTools.filter((t) => which(t) === undefined);
  if (tools.length > 0) return skipBecause(`tool:${tools.join(',')}`, why);
  return skipUnlessAddon(originalDstSupport() ?? why);
}
