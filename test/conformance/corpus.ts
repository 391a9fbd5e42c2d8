/**
 * The conformance corpus (layout in /work/shared/conformance/gateway-api/README.md): case files
 * under `cases/`, base manifests under `base/`, test manifests under `manifests/`. This module
 * parses case files into typed objects and reads manifests with `{GATEWAY_CLASS_NAME}` filled in;
 * it knows nothing of processes or traffic. Extra case directories (EXTRA_CASES: upstream tests
 * the shared corpus has no case file for, transcribed in the same format) use the corpus's
 * manifests; a case name defined twice is an error, so a copy is dropped once the corpus has it.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';

export type Profile = 'gateway' | 'mesh';

/** A Kubernetes-style object as read from YAML. */
export interface K8sObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; generation?: number };
  spec?: Record<string, unknown>;
  [k: string]: unknown;
}

export interface GatewayRef {
  namespace: string;
  name: string;
  listener?: string;
}

export interface ClientRef {
  namespace: string;
  selector: string;
}

export interface CaseRequest {
  method?: string;
  path?: string;
  host?: string;
  headers?: Record<string, string>;
  scheme?: string;
  protocol?: string;
  sni?: string;
  caCertSecret?: string;
  unfollowRedirect?: boolean;
  addRequestId?: boolean;
  backendSetResponseHeaders?: Record<string, string>;
  // gRPC
  service?: string;
  metadata?: Record<string, string>;
  authority?: string;
}

export interface ExpectedRequest {
  path?: string;
  host?: string;
  method?: string;
  headers?: Record<string, string>;
  absentHeaders?: string[];
  protocol?: string;
}

export interface Expectation {
  status?: number | number[];
  code?: string;
  backend?: string;
  namespace?: string;
  request?: ExpectedRequest;
  response?: { headers?: Record<string, string>; absentHeaders?: string[]; validHeaderValues?: Record<string, string[]>; ignoreWhitespace?: boolean };
  redirect?: { host?: string; scheme?: string; path?: string; port?: string };
  mirroredTo?: { name: string; namespace: string }[];
  backendFromRequestHeader?: string;
  unverifiedHeaders?: unknown;
}

export interface BeforeAction {
  action: string;
  kind: string;
  apiVersion?: string;
  namespace: string;
  name: string;
}

export interface RequestCase {
  name?: string;
  request: CaseRequest;
  expect: Expectation;
  gateway?: GatewayRef;
  client?: ClientRef;
  before?: BeforeAction[];
  repeat?: number;
}

/** A condition an exact status check expects: type and status; reason only when given. */
export interface ExpectedCondition {
  type: string;
  status?: string;
  reason?: string;
}

/** An expected RouteParentStatus (`parents` checks). */
export interface ExpectedParent {
  parentRef: { group?: string; kind?: string; namespace?: string; name: string; sectionName?: string; port?: number };
  /** `{CONTROLLER_NAME}` stands for the runner's controller name. */
  controllerName: string;
  conditions: ExpectedCondition[];
}

/** An expected ListenerStatus (`listeners` checks). */
export interface ExpectedListener {
  name: string;
  supportedKinds?: { group?: string; kind: string }[];
  attachedRoutes: number;
  conditions: ExpectedCondition[];
}

export interface StatusCheck {
  route?: string;
  parent?: string;
  condition?: string;
  status?: string;
  reason?: string;
  noAcceptedParents?: boolean;
  gateway?: string;
  attachedRoutes?: number;
  /** The route's whole parent status (with `route`), as upstream's HTTPRouteMustHaveParents. */
  parents?: ExpectedParent[];
  /** With `parents`: the status parentRef must carry the namespace (upstream's namespaceRequired). */
  namespaceRequired?: boolean;
  /** The Gateway's whole listener status (with `gateway`), as upstream's GatewayStatusMustHaveListeners. */
  listeners?: ExpectedListener[];
  latestObservedGeneration?: boolean;
}

export interface Weights {
  expected: Record<string, number>;
  totalRequests?: number;
  concurrency?: number;
  tolerance?: number;
  maxAttempts?: number;
}

export interface CaseFile {
  name: string;
  /** The file name; for a case from an extra directory, its path relative to the repository. */
  file: string;
  profile: Profile;
  features?: string[];
  manifests?: string[];
  gateway?: GatewayRef;
  routeKind?: string;
  routes?: string[];
  routesByGateway?: Record<string, string[]>;
  client?: ClientRef;
  statusChecks?: StatusCheck[];
  setup?: Record<string, unknown>[];
  cases: RequestCase[];
  weights?: Weights;
  mirrorDistribution?: Record<string, unknown>;
  websocket?: Record<string, unknown>;
  notes?: string;
  provisional?: boolean;
}

/** The GatewayClass name `{GATEWAY_CLASS_NAME}` stands for. */
export const GatewayClassName = 'trellis';

/** Trellis's transcriptions of upstream tests the shared corpus has no case file for (README there). */
export const EXTRA_CASES = fileURLToPath(new URL('./cases', import.meta.url));

/** A corpus rooted at `root`, plus case files from `extraCaseDirs`. */
export class Corpus {
  readonly root: string;
  readonly extraCaseDirs: readonly string[];
  constructor(root: string, extraCaseDirs: readonly string[] = []) {
    this.root = root;
    this.extraCaseDirs = extraCaseDirs;
  }

  /** True when the folder has the expected layout. */
  exists(): boolean {
    return existsSync(join(this.root, 'cases')) && existsSync(join(this.root, 'base', 'manifests.yaml'));
  }

  /**
   * Every case file (the corpus's, then each extra directory's), sorted by file name within a
   * directory; unparsable files and names defined twice become errors in `bad`.
   */
  cases(): { cases: CaseFile[]; bad: { file: string; error: string }[] } {
    const cases: CaseFile[] = [];
    const bad: { file: string; error: string }[] = [];
    const seen = new Map<string, string>();
    for (const [i, dir] of [join(this.root, 'cases'), ...this.extraCaseDirs].entries()) {
      for (const f of readdirSync(dir).filter((x) => x.endsWith('.yaml') || x.endsWith('.yml')).sort()) {
        const file = i === 0 ? f : join(dir, f);
        try {
          const c = parse(readFileSync(join(dir, f), 'utf8')) as Partial<CaseFile> | null;
          if (c === null || typeof c !== 'object' || typeof c.name !== 'string') throw new Error('not a case file (no name)');
          const first = seen.get(c.name);
          if (first !== undefined) throw new Error(`case ${c.name} is also defined by ${first}: drop one`);
          seen.set(c.name, file);
          const profile = c.profile === 'mesh' ? 'mesh' : 'gateway';
          cases.push({ ...c, name: c.name, file, profile, cases: Array.isArray(c.cases) ? c.cases : [] } as CaseFile);
        } catch (err) {
          bad.push({ file, error: (err as Error).message });
        }
      }
    }
    return { cases, bad };
  }

  /** Text of a manifest relative to the root, with the gateway class filled in. */
  text(rel: string): string {
    return readFileSync(join(this.root, rel), 'utf8').replaceAll('{GATEWAY_CLASS_NAME}', GatewayClassName);
  }

  /** Base manifests of a profile (the mesh profile uses base/mesh only). */
  baseText(profile: Profile): string {
    return profile === 'mesh' ? this.text('base/mesh/manifests.yaml') : this.text('base/manifests.yaml');
  }

  /** A test manifest (`manifests/<rel>`). */
  manifestText(rel: string): string {
    return this.text(join('manifests', rel));
  }
}

/** Parses multi-document YAML into objects (empty and non-object documents dropped). */
export function objectsOf(text: string): K8sObject[] {
  const out: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    const v = doc.toJS() as unknown;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) out.push(v as K8sObject);
  }
  return out;
}

/** `namespace/name` of an object. */
export const keyOf = (o: K8sObject): string => `${o.metadata?.namespace ?? 'default'}/${o.metadata?.name ?? ''}`;
