/**
 * The original destination of a connection redirected by iptables (transparent capture), read
 * with SO_ORIGINAL_DST through the tiny native addon in native/ (built at install). Where the
 * addon is missing (build failed, not Linux), `originalDstSupport()` says why, and transparent
 * listeners refuse to start with that message instead of silently misrouting.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type net from 'node:net';

interface Addon {
  getOriginalDst(fd: number): { address: string; port: number; family: number };
}

let addon: Addon | undefined;
let loadError: string | undefined;

function load(): Addon | undefined {
  if (addon !== undefined || loadError !== undefined) return addon;
  try {
    const require = createRequire(import.meta.url);
    addon = require(fileURLToPath(new URL('../../../native/build/Release/original_dst.node', import.meta.url))) as Addon;
  } catch (err) {
    loadError = `the SO_ORIGINAL_DST addon is not built (${(err as Error).message.split('\n')[0]}); run \`npm rebuild\` or \`node scripts/build-native.ts\``;
  }
  return addon;
}

/** undefined when transparent capture can work here, else the reason it cannot. */
export function originalDstSupport(): string | undefined {
  if (process.platform !== 'linux') return 'transparent capture needs Linux (iptables REDIRECT + SO_ORIGINAL_DST)';
  load();
  return loadError;
}

/** The pre-REDIRECT destination of `socket`, or undefined (no addon, not redirected, no fd). */
export function originalDestination(socket: net.Socket): { ip: string; port: number } | undefined {
  const a = load();
  // libuv keeps the fd on the handle; there is no public accessor for it.
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (a === undefined || typeof fd !== 'number' || fd < 0) return undefined;
  try {
    const d = a.getOriginalDst(fd);
    return { ip: d.address, port: d.port };
  } catch {
    return undefined;
  }
}
