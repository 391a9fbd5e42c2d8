/**
 * A `SecretProvider` fed by SDS: Envoy `Secret` resources (proto3 JSON: `tls_certificate` with
 * certificate_chain + private_key, or `validation_context`) parsed and swapped in atomically. An
 * invalid Secret throws TrellisError('XDS_INVALID') naming it and the field, before anything
 * changes, so the xDS client can NACK. Connections made after `update()` use the new material;
 * established connections keep theirs, as in Envoy.
 */
import { TrellisError } from '../../errors.ts';
import type { XdsJson } from '../../xds/types.ts';
import { child, configError, isObj, optObj } from '../xds-json.ts';
import type { SecretProvider } from './secret-provider.ts';
import { parseValidationContext, readDataSource, type TlsCertificate, type ValidationContext } from './upstream-tls-config.ts';

/** A SecretProvider whose contents come from SDS. */
export interface SdsSecrets extends SecretProvider {
  /** Replace all secrets (SotW) with `resources` keyed by name; throws XDS_INVALID without changing anything. */
  update(resources: ReadonlyMap<string, XdsJson>): void;
  /** Names currently held. */
  names(): string[];
}

/** Parses one Secret resource. */
export function parseSecret(name: string, json: unknown): { certificate?: TlsCertificate; validation?: ValidationContext } {
  const at = `secret '${name}'`;
  if (!isObj(json)) configError(at, 'expected an object');
  const cert = optObj(json.tls_certificate, child(at, 'tls_certificate'));
  if (cert !== undefined) {
    const cat = child(at, 'tls_certificate');
    const chain = optObj(cert.certificate_chain, child(cat, 'certificate_chain'));
    const key = optObj(cert.private_key, child(cat, 'private_key'));
    if (chain === undefined) configError(child(cat, 'certificate_chain'), 'required');
    if (key === undefined) configError(child(cat, 'private_key'), 'required');
    return { certificate: Object.freeze({ certChain: readDataSource(chain, child(cat, 'certificate_chain')), privateKey: readDataSource(key, child(cat, 'private_key')) }) };
  }
  const vc = optObj(json.validation_context, child(at, 'validation_context'));
  if (vc !== undefined) return { validation: parseValidationContext(vc, child(at, 'validation_context')) };
  configError(at, 'only tls_certificate and validation_context secrets are supported');
}

/** Creates an empty SDS-backed provider. */
export function createSdsSecrets(): SdsSecrets {
  let certs = new Map<string, TlsCertificate>();
  let validation = new Map<string, ValidationContext>();
  return {
    tlsCertificate: (name) => certs.get(name),
    validationContext: (name) => validation.get(name),
    update(resources) {
      const nextCerts = new Map<string, TlsCertificate>();
      const nextValidation = new Map<string, ValidationContext>();
      for (const [name, json] of resources) {
        if (name === '') throw new TrellisError('XDS_INVALID', 'secret with an empty name');
        const s = parseSecret(name, json);
        if (s.certificate !== undefined) nextCerts.set(name, s.certificate);
        if (s.validation !== undefined) nextValidation.set(name, s.validation);
      }
      certs = nextCerts;
      validation = nextValidation;
    },
    names: () => [...certs.keys(), ...validation.keys()],
  };
}
