/**
 * The validation webhook's decision: the checks `trellis analyze` makes, applied to one object at
 * `kubectl apply` time. Schema and value checks (config/document.ts) refuse the object with the
 * analyzer's message; cross-resource findings are computed against what the control plane holds
 * (with the new object in place of its old version) and refuse only where the object is wrong on
 * its own (weights not summing to 100, an invalid header value, duplicate subsets, ...). Findings
 * that depend on other objects (a host or gateway not found yet) come back as warnings, which
 * kubectl prints, because `kubectl apply -f dir/` creates objects in an order of its own.
 */
import { processDocument } from '../../config/document.ts';
import { analyzeConfig } from '../../config/analyze/index.ts';
import type { Diagnostic, Resource } from '../../config/resource.ts';
import { resourceKey } from '../../config/resource.ts';
import type { AdmissionRequest, AdmissionVerdict } from './admission.ts';

/** Analyzer codes about the object alone: an error with one of these refuses it. */
const SelfContained: ReadonlySet<string> = new Set([
  'WEIGHTS_NOT_100', 'HEADER_VALUE_INVALID', 'SUBSET_DUPLICATE', 'JWT_NO_KEYS', 'ROUTE_MATCH_INEFFECTIVE',
]);
// Not AUTHZ_UNKNOWN_CONDITION: Istio adds condition keys (source.trustDomain) faster than a
// local list follows, and refusing a policy the API server accepts would block valid config.

function describe(d: Diagnostic): string {
  return `${d.code}${d.fieldPath ? ` at ${d.fieldPath}` : ''}: ${d.message}`;
}

/**
 * Validates one object. `current` lists the resources the control plane holds (for the
 * cross-resource checks); pass none to check the object alone.
 */
export function validateObject(object: Record<string, unknown>, current: readonly Resource[] = [], domainSuffix?: string): AdmissionVerdict {
  const m = (object.metadata ?? {}) as { name?: string; namespace?: string };
  const file = `admission:${m.namespace ?? ''}/${String(object.kind ?? '')}/${m.name ?? ''}`;
  const { status: _status, ...value } = object;
  // Admission runs after the API server checked the object against its CRD's schema.
  const doc = processDocument(value, { file, line: 1, lineOf: () => undefined, source: { file, line: 1 } }, { apiValidated: true });
  const errors = doc.diagnostics.filter((d) => d.severity === 'error');
  if (doc.resource === undefined || errors.length > 0) {
    if (doc.resource === undefined && errors.length === 0) return { allowed: true }; // a kind Trellis does not manage
    return { allowed: false, code: 400, message: `trellis: ${String(object.kind)} ${m.namespace ?? ''}/${m.name ?? ''} is invalid: ${errors.map(describe).join('; ')}` };
  }
  const key = resourceKey(doc.resource);
  const others = current.filter((r) => resourceKey(r) !== key);
  const findings = analyzeConfig([...others, doc.resource], { domainSuffix })
    .filter((d) => d.resource?.kind === doc.resource!.kind && d.resource.namespace === doc.resource!.metadata.namespace && d.resource.name === doc.resource!.metadata.name);
  const refusing = findings.filter((d) => d.severity === 'error' && SelfContained.has(d.code));
  if (refusing.length > 0) {
    return { allowed: false, code: 400, message: `trellis: ${doc.resource.kind} ${doc.resource.metadata.namespace}/${doc.resource.metadata.name} is invalid: ${refusing.map(describe).join('; ')}` };
  }
  const warnings = [...doc.diagnostics, ...findings].filter((d) => d.severity !== 'info').map(describe);
  return { allowed: true, warnings };
}

/** The `/validate` handler over a source of current resources. */
export function validationHandler(current: () => readonly Resource[], domainSuffix?: string): (req: AdmissionRequest) => AdmissionVerdict {
  return (req) => {
    if (req.operation === 'DELETE' || req.object === undefined) return { allowed: true };
    return validateObject(req.object, current(), domainSuffix);
  };
}
