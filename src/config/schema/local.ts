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

/** What a Workload is (the kind's description in `trellis explain workload` and its reference page). */
export const WORKLOAD_DESCRIPTION =
  'A process that `trellis up` runs on this machine with its own sidecar, the local stand-in for a Kubernetes Deployment and its pods. '
    + 'metadata.labels are the pod labels: Services select the Workload by them (so its ready replicas become their endpoints) and DestinationRule subsets pick versions by them (version: v2). '
    + 'Each replica gets a name <metadata.name>-<5 hex> (what `trellis status` lists and `trellis proxy-config` accepts) and is registered as an Istio WorkloadEntry while it is ready. '
    + 'The annotation proxy.istio.io/config: "concurrency: N" sets the worker processes of its sidecars, as on an Istio pod (default: `trellis up --proxy-concurrency`, 1). '
    + 'The annotations prometheus.io/scrape: "true", prometheus.io/port (one of its ports) and prometheus.io/path (default /metrics) merge the app metrics into its sidecar status port, as Istio merges them (docs/telemetry.md); prometheus.istio.io/merge-metrics: "false" opts out.';

/**
 * trellis.dev/v1alpha1 Workload spec: a process `trellis up` runs with a sidecar. The
 * descriptions are the reference: `trellis explain workload` and docs/reference/workload.md print
 * them, so they say what `up` does with each field (src/runtime/replica.ts, plan.ts).
 */
export const WORKLOAD_SPEC: SchemaNode = {
  type: 'object',
  description: 'What to run, how many copies, and how the mesh reaches it.',
  required: ['command'],
  properties: {
    replicas: {
      type: 'integer', minimum: 0, maximum: 1000, default: 1,
      description: 'How many copies to run, each its own process with its own sidecar and ports; a replica that exits is restarted (with backoff) on fresh ports. 0 declares the Workload without running it.',
    },
    command: {
      type: 'array', minItems: 1, items: { type: 'string' },
      description: 'The program and its arguments, run directly (not through a shell: use ["sh", "-c", "..."] for pipes or $VARS). A command starting with `trellis` runs this project\'s own CLI (e.g. [trellis, sample, demo]). '
        + 'It must listen on $PORT (its first port) and call other services as http://SERVICE:PORT: in explicit capture through HTTP_PROXY (set to its sidecar), in transparent capture directly.',
    },
    env: {
      ...strMap, default: {},
      description: 'Extra environment variables, on top of the environment `trellis up` runs in (without its proxy variables). The runtime sets PORT, POD_NAME, NAMESPACE, and in explicit capture HTTP_PROXY and http_proxy (the sidecar), TRELLIS_OUTBOUND_PORTS and TRELLIS_APP_PORTS: these win over env. env may override its defaults: SERVICE_NAME and SERVICE_VERSION (the first Service selecting the Workload, its version label), NO_PROXY and no_proxy (localhost,127.0.0.1,::1) and NODE_USE_ENV_PROXY=1 (makes Node\'s fetch and http use HTTP_PROXY).',
    },
    ports: {
      type: 'array',
      default: [],
      description: 'Ports the application listens on, in addition to the targetPort of every Service port that selects it. In explicit capture each gets a fresh local port (the first one is $PORT; all of them in $TRELLIS_APP_PORTS as {"declared": local}); in transparent capture the declared port itself.',
      items: {
        type: 'object',
        required: ['port'],
        properties: {
          name: { ...str, description: 'A name for the port (informational).' },
          port: { ...port, description: 'The port number as the Workload declares it (and Services target it).' },
          protocol: {
            type: 'string', enum: ['HTTP', 'HTTP2', 'GRPC', 'TCP'],
            description: 'What the application speaks on this port, which decides how `up` checks it is ready: TCP (the default) when it accepts connections; HTTP and HTTP2 (h2c) when GET readinessPath answers 2xx or 3xx (without readinessPath, when it accepts connections); GRPC when the standard gRPC health service (grpc.health.v1.Health/Check) answers SERVING. '
              + 'How the mesh routes traffic to the port is decided by the Service port that selects it (name prefix http-, grpc-, ... or appProtocol), as in Istio.',
          },
        },
      },
    },
    serviceAccount: {
      type: 'string', default: 'default', minLength: 1,
      description: 'The service account the replicas run as: their SPIFFE identity spiffe://cluster.local/ns/<namespace>/sa/<serviceAccount>, as in Kubernetes, sent by the sidecar to the control plane and written into the WorkloadEntry.',
    },
    captureMode: {
      type: 'string', enum: ['explicit', 'transparent'], default: 'explicit',
      description: 'How the application\'s traffic reaches its sidecar. explicit (no privileges): the app dials its sidecar, as an HTTP proxy (HTTP_PROXY) or on local ports ($TRELLIS_OUTBOUND_PORTS). transparent (root): each replica runs in its own network namespace and iptables redirects its traffic, as in Kubernetes. '
        + 'One transparent Workload makes the whole mesh transparent; `trellis up --capture` overrides every Workload.',
    },
    workingDir: {
      ...str,
      description: 'Directory the command runs in. Default, and base of a relative path: the directory of the file that declares the Workload (as a Procfile runs its commands next to it), so `up --config` works from any directory.',
    },
    readinessPath: {
      type: 'string', pattern: '^/',
      description: 'HTTP path that answers 2xx or 3xx once the application can serve, like a Kubernetes readinessProbe httpGet. Probed on every HTTP and HTTP2 port of `ports` (when none is declared: on the first port of `ports`, else the lowest port the app listens on) before the replica is registered as an endpoint, and every 2 s after: three failures in a row take it out of the endpoints until it answers again. Without it a replica is ready once its ports accept connections.',
    },
  },
};
