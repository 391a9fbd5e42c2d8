/**
 * How `trellis up` gives each proxy its mesh identity: a token for the mesh CA per proxy
 * incarnation (issued into the CA's token directory, revoked when the incarnation stops), handed
 * to the proxy as a 0600 file or, in transparent capture, in its environment.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { issueToken, revokeToken, type TokenIdentity } from '../control/ca/tokens.ts';

/** How `up` gives a proxy its mesh identity. */
export interface WorkloadIdentityContext {
  readonly tokenDir: string;
  readonly trustDomain: string;
}

/**
 * Issues a token for one proxy incarnation: in a 0600 file (explicit capture), or, with `viaEnv`,
 * in the environment (transparent capture: the sidecar runs as uid 1337, which cannot enter the
 * state dir). Returns the proxy flags, the environment to add, and the revocation.
 */
export function identityArgs(id: WorkloadIdentityContext | undefined, runDir: string, name: string, identity: TokenIdentity, viaEnv = false): { args: string[]; env: Record<string, string>; revoke: () => void } {
  if (id === undefined) return { args: [], env: {}, revoke: () => {} };
  const token = issueToken(id.tokenDir, identity);
  const file = join(runDir, `${name}.token`);
  if (!viaEnv) writeFileSync(file, token, { mode: 0o600 });
  return {
    args: [...(viaEnv ? [] : ['--ca-token-file', file]), '--trust-domain', id.trustDomain],
    env: viaEnv ? { TRELLIS_CA_TOKEN: token } : {},
    revoke: () => {
      revokeToken(id.tokenDir, token);
      rmSync(file, { force: true });
    },
  };
}
