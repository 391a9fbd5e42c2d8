/**
 * Turns objects read from the Kubernetes API into Trellis Resources through the same validation
 * and defaulting as YAML files (config/document.ts), so the translation cannot tell where config
 * came from. Server-managed parts that are not config (status, managedFields) are dropped before;
 * Pods, which only feed the registry (labels, service account, IP), are reduced to those fields
 * so a kubelet's status heartbeat does not churn the mesh snapshot.
 */
import type { Diagnostic, Resource, SourceInfo } from '../resource.ts';
import { processDocument } from '../document.ts';
import { deepFreeze } from '../document.ts';
import type { KubeObject } from './kubernetes-rest.ts';
import { PodType, apiVersionOf } from './kubernetes-kinds.ts';
import type { KubeKind } from './kubernetes-kinds.ts';

/** What one object became: a Resource, or the reasons it is not one. */
export interface Converted {
  readonly resource?: Resource;
  readonly diagnostics: readonly Diagnostic[];
}

/** The pseudo file diagnostics name for an API object, e.g. `kubernetes:bookinfo/virtualservices/reviews`. */
export function apiSourceName(kind: KubeKind, namespace: string, name: string): string {
  return kind.namespaced ? `kubernetes:${namespace}/${kind.plural}/${name}` : `kubernetes:${kind.plural}/${name}`;
}

function source(file: string): SourceInfo {
  return Object.freeze({ file, line: 1, lineOf: () => undefined });
}

function podResource(kind: KubeKind, obj: KubeObject, file: string): Resource {
  const m = obj.metadata ?? {};
  const spec = (obj.spec ?? {}) as { serviceAccountName?: string; nodeName?: string };
  const status = (obj.status ?? {}) as { podIP?: string; podIPs?: { ip?: string }[]; phase?: string; conditions?: { type?: string; status?: string }[] };
  const ready = status.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
  const r: Resource = {
    type: PodType,
    apiVersion: apiVersionOf(kind),
    kind: 'Pod',
    metadata: {
      name: m.name ?? '',
      namespace: m.namespace ?? 'default',
      labels: { ...(m.labels ?? {}) },
      annotations: {},
      ...(typeof m.creationTimestamp === 'string' ? { creationTimestamp: m.creationTimestamp } : {}),
      ...(typeof m.uid === 'string' ? { uid: m.uid } : {}),
    },
    spec: { serviceAccountName: spec.serviceAccountName ?? 'default', ...(spec.nodeName ? { nodeName: spec.nodeName } : {}) },
    body: {
      status: {
        ...(status.podIP ? { podIP: status.podIP } : {}),
        podIPs: (status.podIPs ?? []).map((p) => p.ip).filter((ip): ip is string => typeof ip === 'string'),
        phase: status.phase ?? 'Pending',
        ready,
      },
    },
    source: source(file),
  };
  return deepFreeze(r);
}

/** Converts one API object of `kind`. */
export function convertObject(kind: KubeKind, obj: KubeObject): Converted {
  const name = obj.metadata?.name ?? '';
  const namespace = obj.metadata?.namespace ?? '';
  const file = apiSourceName(kind, namespace, name);
  if (kind.type === PodType) return { resource: podResource(kind, obj, file), diagnostics: [] };
  const { status: _status, ...rest } = obj;
  const { managedFields: _managed, ...metadata } = obj.metadata ?? {};
  // The list answer leaves apiVersion/kind off its items.
  const value = { ...rest, apiVersion: obj.apiVersion ?? apiVersionOf(kind), kind: obj.kind ?? kind.kind, metadata };
  const result = processDocument(value, { file, line: 1, lineOf: () => undefined, source: source(file) }, { apiValidated: true });
  return { resource: result.resource, diagnostics: result.diagnostics };
}
