/**
 * Joins the two sources of TLS material a proxy has into the one Secret set its data plane (or
 * worker processes) applies: the Secrets the control plane sends over ADS (ROOTCA, gateway
 * credentials) and the workload certificate `default` the local identity agent holds. Sits between
 * the ADS client and the applier; re-applies the joined set whenever either side changes, one
 * application at a time. Also hands the trust bundle (ROOTCA) to the agent, which renews early when
 * the CA moved to a new root.
 */
import { TypeUrl, type XdsJson, type XdsTypeUrl } from '../../xds/types.ts';
import { splitCertificates } from '../../pki/pem.ts';
import type { ConfigApplier } from '../xds-client/ads-client.ts';
import type { IdentityAgent, WorkloadCertificate } from './identity-agent.ts';

/** The Secret resource of the workload certificate, named as Istio names it. */
export function workloadSecret(cert: WorkloadCertificate, name = 'default'): XdsJson {
  return { name, tls_certificate: { certificate_chain: { inline_string: cert.certChain }, private_key: { inline_string: cert.privateKey } } };
}

export class LocalSecretsApplier implements ConfigApplier {
  readonly #inner: ConfigApplier;
  readonly #agent: IdentityAgent;
  #ads: ReadonlyMap<string, XdsJson> = new Map();
  #chain: Promise<void> = Promise.resolve();

  constructor(inner: ConfigApplier, agent: IdentityAgent) {
    this.#inner = inner;
    this.#agent = agent;
    agent.onChange(() => void this.#applySecrets().catch(() => {}));
  }

  apply(typeUrl: XdsTypeUrl, resources: ReadonlyMap<string, XdsJson>): void | Promise<void> {
    if (typeUrl !== TypeUrl.Secret) return this.#inner.apply(typeUrl, resources);
    const prev = this.#ads;
    this.#ads = resources;
    return this.#applySecrets().then(
      () => {
        const root = resources.get('ROOTCA') as { validation_context?: { trusted_ca?: { inline_string?: string } } } | undefined;
        const pem = root?.validation_context?.trusted_ca?.inline_string;
        if (pem !== undefined) this.#agent.setTrustBundle(splitCertificates(pem));
      },
      (err: unknown) => {
        this.#ads = prev; // rejected: the next agent refresh must not re-apply it
        throw err;
      },
    );
  }

  #applySecrets(): Promise<void> {
    const run = async () => {
      const joined = new Map(this.#ads);
      const cert = this.#agent.current;
      if (cert !== undefined) joined.set('default', workloadSecret(cert));
      await this.#inner.apply(TypeUrl.Secret, joined);
    };
    const next = this.#chain.then(run, run);
    this.#chain = next.catch(() => {});
    return next;
  }
}
