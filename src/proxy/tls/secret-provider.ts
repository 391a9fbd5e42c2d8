/**
 * The SDS seam: where TLS material named by `sds_secret_config` comes from. The proxy's xDS client
 * implements it over the Secret resources it receives; tests use `staticSecrets`. Lookups happen
 * per new connection, so a rotated secret applies to the next connection without a cluster rebuild.
 */
import type { TlsCertificate, ValidationContext } from './upstream-tls-config.ts';

/** Resolves SDS secrets by name; undefined while a secret has not arrived (connections then fail with UF). */
export interface SecretProvider {
  tlsCertificate(name: string): TlsCertificate | undefined;
  validationContext(name: string): ValidationContext | undefined;
}

/** A provider with no secrets. */
export const noSecrets: SecretProvider = {
  tlsCertificate: () => undefined,
  validationContext: () => undefined,
};

/** A fixed provider for tests and static bootstraps. */
export function staticSecrets(certs: Record<string, TlsCertificate>, validation: Record<string, ValidationContext> = {}): SecretProvider {
  return {
    tlsCertificate: (name) => certs[name],
    validationContext: (name) => validation[name],
  };
}
