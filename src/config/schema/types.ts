/**
 * The subset of OpenAPI v3 / JSON Schema that Kubernetes structural schemas (and the upstream
 * Istio and Gateway API CRD schemas we reuse) are written in, plus two Trellis annotations:
 * `x-trellis-check` names a value check the upstream schema cannot express (durations, RE2
 * regexes, CIDRs, ports, hostnames), and `x-trellis-closed` marks objects whose unknown fields
 * are errors even if the upstream schema left them open.
 */

/** One node of a schema. */
export interface SchemaNode {
  type?: string;
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
  items?: SchemaNode;
  required?: string[];
  enum?: unknown[];
  nullable?: boolean;
  oneOf?: SchemaNode[];
  anyOf?: SchemaNode[];
  allOf?: SchemaNode[];
  not?: SchemaNode;
  $ref?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean | number;
  exclusiveMaximum?: boolean | number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  format?: string;
  default?: unknown;
  description?: string;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-trellis-check'?: string;
  [k: string]: unknown;
}

/** A finding from schema validation, relative to the validated value (`path` is a field path). */
export interface SchemaIssue {
  code: string;
  path: string;
  message: string;
  severity?: 'error' | 'warning';
}
