/**
 * Schemas we write ourselves, in the same structural-schema form as the upstream ones:
 * ObjectMeta (names, labels), the Kubernetes core kinds we read in local mode (Namespace,
 * Service, Secret, ConfigMap, discovery.k8s.io EndpointSlice; the model package ships them only
 * as precompiled validators), Istio Telemetry v1 (the model package has an older v1alpha1
 * without targetRefs) and Trellis's own Workload. Fields follow the upstream API references.
 */
import type { SchemaNode } from './types.ts';

const str: SchemaNode = { type: 'string' };
const bool: SchemaNode = { type: 'boolean' };
const int: SchemaNode = { type: 'integer' };
const strMap: SchemaNode = { type: 'object', additionalProperties: { type: 'string' } };
const strList: SchemaNode = { type: 'array', items: { type: 'string' } };
const open: SchemaNode = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
const port: SchemaNode = { type: 'integer', 'x-trellis-check': 'port' };

/** metadata: the ObjectMeta fields users write or tools leave behind. */
export const OBJECT_META: SchemaNode = {
  type: 'object',
  properties: {
    name: str, generateName: str, namespace: str, labels: strMap, annotations: strMap,
    uid: str, resourceVersion: str, generation: int, creationTimestamp: str, deletionTimestamp: str,
    deletionGracePeriodSeconds: int, selfLink: str, finalizers: strList,
    ownerReferences: { type: 'array', items: open }, managedFields: { type: 'array', items: open },
  },
};

/** core/v1 Namespace spec. */
export const NAMESPACE_SPEC: SchemaNode = { type: 'object', properties: { finalizers: strList } };

/** core/v1 Service spec. */
export const SERVICE_SPEC: SchemaNode = {
  type: 'object',
  properties: {
    ports: {
      type: 'array',
      items: {
        type: 'object',
        required: ['port'],
        properties: {
          name: str,
          protocol: { type: 'string', enum: ['TCP', 'UDP', 'SCTP'] },
          appProtocol: str,
          port,
          targetPort: { 'x-kubernetes-int-or-string': true, 'x-trellis-check': 'portOrName' },
          nodePort: { type: 'integer', minimum: 0, maximum: 65535 },
        },
      },
    },
    selector: strMap,
    type: { type: 'string', enum: ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'] },
    clusterIP: str, clusterIPs: strList, externalIPs: { type: 'array', items: { type: 'string', 'x-trellis-check': 'ip' } },
    externalName: str,
    sessionAffinity: { type: 'string', enum: ['None', 'ClientIP'] },
    sessionAffinityConfig: open,
    loadBalancerIP: str, loadBalancerSourceRanges: { type: 'array', items: { type: 'string', 'x-trellis-check': 'cidr' } },
    loadBalancerClass: str,
    externalTrafficPolicy: { type: 'string', enum: ['Cluster', 'Local'] },
    internalTrafficPolicy: { type: 'string', enum: ['Cluster', 'Local'] },
    healthCheckNodePort: int, publishNotReadyAddresses: bool,
    ipFamilies: { type: 'array', items: { type: 'string', enum: ['IPv4', 'IPv6'] } },
    ipFamilyPolicy: { type: 'string', enum: ['SingleStack', 'PreferDualStack', 'RequireDualStack'] },
    allocateLoadBalancerNodePorts: bool, trafficDistribution: str,
  },
};

/** core/v1 Secret top-level fields (besides apiVersion, kind, metadata). */
export const SECRET_BODY: SchemaNode = {
  type: 'object',
  properties: { type: str, data: strMap, stringData: strMap, immutable: bool },
};

/** core/v1 ConfigMap top-level fields. */
export const CONFIGMAP_BODY: SchemaNode = {
  type: 'object',
  properties: { data: strMap, binaryData: strMap, immutable: bool },
};

/** discovery.k8s.io/v1 EndpointSlice top-level fields. */
export const ENDPOINTSLICE_BODY: SchemaNode = {
  type: 'object',
  required: ['addressType'],
  properties: {
    addressType: { type: 'string', enum: ['IPv4', 'IPv6', 'FQDN'] },
    endpoints: {
      type: 'array',
      items: {
        type: 'object',
        required: ['addresses'],
        properties: {
          addresses: { type: 'array', minItems: 1, maxItems: 100, items: str },
          conditions: { type: 'object', properties: { ready: bool, serving: bool, terminating: bool } },
          hostname: str, nodeName: str, zone: str,
          targetRef: open, hints: open, deprecatedTopology: strMap,
        },
      },
    },
    ports: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: str,
          protocol: { type: 'string', enum: ['TCP', 'UDP', 'SCTP'] },
          port,
          appProtocol: str,
        },
      },
    },
  },
};

const workloadMode: SchemaNode = { type: 'string', enum: ['CLIENT_AND_SERVER', 'CLIENT', 'SERVER'] };
const providers: SchemaNode = { type: 'array', items: { type: 'object', required: ['name'], properties: { name: str } } };
const targetRef: SchemaNode = {
  type: 'object',
  required: ['kind', 'name'],
  properties: { group: str, kind: str, name: str, namespace: str },
};
const headerOrEnv: SchemaNode = { type: 'object', required: ['name'], properties: { name: str, defaultValue: str } };

/** telemetry.istio.io/v1 Telemetry spec (istio.io/latest/docs/reference/config/telemetry/). */
export const TELEMETRY_SPEC: SchemaNode = {
  type: 'object',
  properties: {
    selector: { type: 'object', properties: { matchLabels: strMap } },
    targetRef,
    targetRefs: { type: 'array', items: targetRef },
    tracing: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          match: { type: 'object', properties: { mode: workloadMode } },
          providers,
          randomSamplingPercentage: { type: 'number', 'x-trellis-check': 'percent' },
          disableSpanReporting: bool,
          useRequestIdForTraceSampling: bool,
          customTags: {
            type: 'object',
            additionalProperties: {
              type: 'object',
              properties: {
                literal: { type: 'object', required: ['value'], properties: { value: str } },
                environment: headerOrEnv,
                header: headerOrEnv,
              },
              oneOf: [
                { not: { anyOf: [{ required: ['literal'] }, { required: ['environment'] }, { required: ['header'] }] } },
                { required: ['literal'] }, { required: ['environment'] }, { required: ['header'] },
              ],
            },
          },
        },
      },
    },
    metrics: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          providers,
          reportingInterval: { type: 'string', 'x-trellis-check': 'duration' },
          overrides: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                match: {
                  type: 'object',
                  properties: {
                    metric: {
                      type: 'string',
                      enum: ['ALL_METRICS', 'REQUEST_COUNT', 'REQUEST_DURATION', 'REQUEST_SIZE', 'RESPONSE_SIZE',
                        'TCP_OPENED_CONNECTIONS', 'TCP_CLOSED_CONNECTIONS', 'TCP_SENT_BYTES', 'TCP_RECEIVED_BYTES',
                        'GRPC_REQUEST_MESSAGES', 'GRPC_RESPONSE_MESSAGES'],
                    },
                    customMetric: str,
                    mode: workloadMode,
                  },
                },
                disabled: bool,
                tagOverrides: {
                  type: 'object',
                  additionalProperties: {
                    type: 'object',
                    properties: { operation: { type: 'string', enum: ['UPSERT', 'REMOVE'] }, value: str },
                  },
                },
              },
            },
          },
        },
      },
    },
    accessLogging: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          match: { type: 'object', properties: { mode: workloadMode } },
          providers,
          disabled: bool,
          filter: { type: 'object', required: ['expression'], properties: { expression: str } },
        },
      },
    },
  },
};

/**
 * Spec of a Kubernetes Pod or pod-template controller (Deployment, StatefulSet, DaemonSet,
 * ReplicaSet, Job, CronJob): kept as written. Trellis reads labels, container ports and security
 * contexts from it and leaves validating the rest to the Kubernetes API server.
 */
export const K8S_WORKLOAD_SPEC: SchemaNode = open;

/** trellis.dev/v1alpha1 Workload spec: a process `trellis up` runs with a sidecar. */
export const WORKLOAD_SPEC: SchemaNode = {
  type: 'object',
  required: ['command'],
  properties: {
    replicas: { type: 'integer', minimum: 0, maximum: 1000, default: 1 },
    command: { type: 'array', minItems: 1, items: { type: 'string' } },
    env: { ...strMap, default: {} },
    ports: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        required: ['port'],
        properties: {
          name: str,
          port,
          protocol: { type: 'string', enum: ['HTTP', 'HTTP2', 'GRPC', 'TCP'] },
        },
      },
    },
    serviceAccount: { type: 'string', default: 'default', minLength: 1 },
    captureMode: { type: 'string', enum: ['explicit', 'transparent'], default: 'explicit' },
    workingDir: str,
    readinessPath: { type: 'string', pattern: '^/' },
  },
};
