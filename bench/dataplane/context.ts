/**
 * What every path family's setup receives: where to write configs and logs, the upstream's
 * port, the bench certificates, and the tools found on this machine.
 */
import type { BenchCerts } from './certs.ts';

export interface SetupContext {
  /** Temp directory for generated configs (removed at the end). */
  workDir: string;
  logDir: string;
  upstreamPort: number;
  certs: BenchCerts | undefined;
  tools: Record<string, string | undefined>;
  /** Repository root (for bin/trellis.js and node). */
  root: string;
  /** Where `--profile` CPU profiles go; undefined when not profiling. */
  profileDir: string | undefined;
  /** `--baseline DIR`: another checkout whose `bin/trellis.js` runs the `...@baseline` paths. */
  baselineRoot?: string;
}

/** The one id a path is keyed by in the upstream Host header for non-mesh proxies. */
export const PlainHost = 'bench.local';
