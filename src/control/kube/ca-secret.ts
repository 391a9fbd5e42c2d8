/**
 * The mesh CA's material on Kubernetes, kept where istiod keeps it so every replica and every
 * revision in the control plane's namespace signs under one root: a plug-in CA in the Secret
 * `cacerts` (Istio's layout: ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem) when it
 * exists, otherwise a self-signed root in `istio-ca-secret` (type `istio.io/ca-root`, ca-cert.pem
 * and ca-key.pem; an empty root-cert.pem means ca-cert is the root), which the first replica to
 * start creates; one that loses that race (409) reads the winner's. Both Secrets are watched (a
 * reflector on the namespace's Secrets), so replacing `cacerts`, creating it later, or deleting
 * it is a change of material the CertificateAuthority handles as a rotation (a new root is
 * distributed before it signs). A watch that fails keeps the last material read.
 */
import type { KeyAlgorithm } from '../../pki/keys.ts';
import { apiStatus } from '../../config/store/kubernetes-rest.ts';
import type { KubeObject, KubeRest } from '../../config/store/kubernetes-rest.ts';
import { kubeKind } from '../../config/store/kubernetes-kinds.ts';
import { ResourceTypes } from '../../config/resource.ts';
import { Reflector } from '../../config/store/kubernetes-reflector.ts';
import { TrellisError, describeError } from '../../errors.ts';
import { CaFileNames, generateSelfSignedCa, parseCaMaterial, type CaMaterial, type CaMaterialSource, type CaTexts } from '../ca/ca-files.ts';

/** Istio's Secret names. */
export const CaSecretNames = { plugin: 'cacerts', selfSigned: 'istio-ca-secret' } as const;
/** Istio's type for its self-signed CA Secret. */
export const IstioCaSecretType = 'istio.io/ca-root';

interface SecretJson extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}

function decoded(s: SecretJson, key: string): string {
  return Buffer.from(s.data?.[key] ?? '', 'base64').toString('utf8');
}

/** The plug-in layout from a Secret; an empty root-cert.pem means ca-cert.pem is its own root (istio-ca-secret). */
function textsOf(s: SecretJson): CaTexts {
  const cert = decoded(s, CaFileNames.cert);
  const root = decoded(s, CaFileNames.root);
  return { cert, key: decoded(s, CaFileNames.key), root: root.trim() === '' ? cert : root, chain: decoded(s, CaFileNames.chain) };
}

export interface KubernetesCaSourceOptions {
  readonly rest: KubeRest;
  /** The control plane's namespace. */
  readonly namespace: string;
  readonly log?: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;
}

/** The CA material source of a control plane on Kubernetes. */
export class KubernetesCaSource implements CaMaterialSource {
  readonly #o: KubernetesCaSourceOptions;
  readonly #secrets = new Map<string, SecretJson>();
  readonly #reflector: Reflector;
  #lastChoice: string | undefined;

  constructor(o: KubernetesCaSourceOptions) {
    this.#o = o;
    const names = new Set<string>(Object.values(CaSecretNames));
    const keep = (obj: KubeObject) => names.has(obj.metadata?.name ?? '');
    this.#reflector = new Reflector(o.rest, kubeKind(ResourceTypes.Secret)!, {
      replace: (_k, objects) => {
        this.#secrets.clear();
        for (const obj of objects) if (keep(obj)) this.#secrets.set(obj.metadata!.name!, obj);
      },
      event: (_k, type, obj) => {
        if (!keep(obj)) return;
        if (type === 'DELETED') this.#secrets.delete(obj.metadata!.name!);
        else this.#secrets.set(obj.metadata!.name!, obj);
      },
      error: (_k, err) => o.log?.('warn', 'ca: watching the CA Secrets failed; the current CA material stays in force', { namespace: o.namespace, error: describeError(err) }),
    }, { fieldSelector: `metadata.namespace=${o.namespace}` });
  }

  /** The Secret in force: `cacerts` when present, else `istio-ca-secret`. */
  #current(): SecretJson | undefined {
    return this.#secrets.get(CaSecretNames.plugin) ?? this.#secrets.get(CaSecretNames.selfSigned);
  }

  describe(): string {
    return `Secret ${this.#o.namespace}/${this.#current()?.metadata?.name ?? CaSecretNames.selfSigned}`;
  }

  async init(opts: { trustDomain: string; keyAlgorithm?: KeyAlgorithm }): Promise<void> {
    this.#reflector.start();
    await this.#reflector.firstSync;
    if (this.#reflector.state !== 'synced') {
      throw new TrellisError('CA_SECRET_UNREADABLE', `cannot list the Secrets of ${this.#o.namespace} to find the CA (${CaSecretNames.plugin} or ${CaSecretNames.selfSigned}): the control plane needs get/list/watch on secrets`);
    }
    if (this.#current() !== undefined) return;
    const t = await generateSelfSignedCa(opts);
    const coll = `/api/v1/namespaces/${this.#o.namespace}/secrets`;
    try {
      const created = await this.#o.rest.request<SecretJson>('POST', coll, {
        body: {
          apiVersion: 'v1', kind: 'Secret', type: IstioCaSecretType,
          metadata: { name: CaSecretNames.selfSigned, namespace: this.#o.namespace, labels: { 'app.kubernetes.io/part-of': 'trellis' } },
          data: Object.fromEntries(([[CaFileNames.cert, t.cert], [CaFileNames.key, t.key], [CaFileNames.root, t.root], [CaFileNames.chain, ''], ['key.pem', '']] as const)
            .map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
        },
      });
      this.#secrets.set(CaSecretNames.selfSigned, created);
      this.#o.log?.('info', 'ca: generated a self-signed root', { secret: `${this.#o.namespace}/${CaSecretNames.selfSigned}` });
    } catch (err) {
      // Another replica or revision created it first: use theirs.
      if (apiStatus(err) !== 409) throw err;
      this.#secrets.set(CaSecretNames.selfSigned, await this.#o.rest.request<SecretJson>('GET', `${coll}/${CaSecretNames.selfSigned}`));
    }
  }

  stamp(): string {
    const s = this.#current();
    return s === undefined ? '-' : `${s.metadata?.name}@${s.metadata?.resourceVersion ?? ''}`;
  }

  load(now = Date.now()): CaMaterial {
    const s = this.#current();
    const name = `Secret ${this.#o.namespace}/${s?.metadata?.name ?? CaSecretNames.selfSigned}`;
    if (s === undefined) throw new TrellisError('CA_FILE_INVALID', `${name}: deleted (neither ${CaSecretNames.plugin} nor ${CaSecretNames.selfSigned} exists)`, { context: { file: name } });
    for (const k of [CaFileNames.cert, CaFileNames.key]) {
      if ((s.data?.[k] ?? '') === '') throw new TrellisError('CA_FILE_INVALID', `CA file ${name} key ${k}: missing`, { context: { file: `${name} key ${k}` } });
    }
    if (this.#lastChoice !== undefined && this.#lastChoice !== s.metadata?.name) this.#o.log?.('info', 'ca: the CA Secret in force changed', { from: this.#lastChoice, to: s.metadata?.name });
    this.#lastChoice = s.metadata?.name;
    return parseCaMaterial(textsOf(s), name, (f) => `${name} key ${f}`, now);
  }

  close(): void {
    this.#reflector.stop();
  }
}
