/**
 * Every `trellis` verb: its spec (commands-run.ts, commands-inspect.ts) and how to load its code.
 * Loading is lazy and per verb, so `trellis status` never parses the proxy and `trellis --help`
 * parses no verb at all. The order here is the order of `trellis --help` and of the reference.
 */
import type { CommandSpec } from './spec.ts';
import type { Verb } from './main.ts';
import * as run from './commands-run.ts';
import * as inspect from './commands-inspect.ts';
import * as kube from './commands-kube.ts';

/** A verb: its spec and its implementation, loaded on demand. */
export interface CommandEntry {
  readonly spec: CommandSpec;
  readonly load: () => Promise<{ verb: Verb }>;
}

// Literal import paths (not a template) so that the compiled dist/ resolves them as plainly as
// the sources do.
export const commands: readonly CommandEntry[] = [
  { spec: run.up, load: () => import('./up.ts') },
  { spec: run.down, load: () => import('./down.ts') },
  { spec: run.status, load: () => import('./status.ts') },
  { spec: inspect.analyze, load: () => import('./analyze.ts') },
  { spec: inspect.explain, load: () => import('./explain.ts') },
  { spec: inspect.proxyStatus, load: () => import('./proxy-status.ts') },
  { spec: inspect.proxyConfig, load: () => import('./proxy-config.ts') },
  { spec: inspect.mtls, load: () => import('./mtls.ts') },
  { spec: run.control, load: () => import('./control.ts') },
  { spec: run.proxy, load: () => import('./proxy.ts') },
  { spec: run.sdsAgent, load: () => import('./sds-agent.ts') },
  { spec: run.wait, load: () => import('./wait.ts') },
  { spec: run.sample, load: () => import('./sample.ts') },
  { spec: kube.capture, load: () => import('./capture.ts') },
  { spec: kube.tag, load: () => import('./tag.ts') },
  { spec: kube.manifest, load: () => import('./manifest.ts') },
];

/** The entry of verb `name`, or undefined. */
export function findCommand(name: string): CommandEntry | undefined {
  return commands.find((c) => c.spec.name === name);
}
