/**
 * Specs (flags, help, reference docs) of the verbs that run things: `up`, `down`, `status`,
 * `control`, `proxy`, `wait`, `sample`. Plain data; see spec.ts.
 */
import type { CommandSpec } from './spec.ts';

const stateDir = {
  type: 'string', value: 'DIR',
  help: 'state dir of the mesh (default: $TRELLIS_STATE_DIR, else ./.trellis when a mesh runs from it, else the only mesh `trellis up` runs for this user)',
} as const;

export const up = {
  name: 'up',
  summary: 'run a whole mesh (control plane, gateway, sidecars, workloads) on this machine',
  usage: ['up [--config DIR]... [--detach] [--state-dir DIR] [--capture explicit|transparent] [--gateway-port N] [--start-timeout SECONDS] [--mesh-config FILE] [--plugin-ca-dir DIR] [--with prometheus] [--proxy-concurrency N]'],
  description: `Runs the control plane, an ingress gateway and every Workload (trellis.dev/v1alpha1; see \`trellis explain workload\`) of the config, each replica with its own sidecar, all on this machine with no cluster and no root. Without --config it runs the built-in demo (examples/demo/mesh). The config directories are watched: an edit applies live, and a file that stops parsing keeps its last good version in force.

Before starting anything the config is checked as \`trellis analyze\` would; any error stops here. In the foreground \`up\` prints a summary (gateway URLs for the routes the gateway really serves, ports, logs) once every proxy has every endpoint, and runs until Ctrl-C, then stops workloads, sidecars, gateway and control plane in that order. With --detach it prints the same summary and returns; \`trellis down\` stops it.

Explicit capture (the default, unprivileged): every process gets fresh loopback ports; a workload gets PORT (where to listen), HTTP_PROXY/http_proxy (its sidecar, for plain-http calls to http://SERVICE:PORT), NO_PROXY=localhost,127.0.0.1,::1, NODE_USE_ENV_PROXY=1 (so Node's built-in fetch uses the sidecar), SERVICE_NAME, POD_NAME, NAMESPACE and TRELLIS_OUTBOUND_PORTS (service port -> local sidecar port, for clients that ignore proxy variables). Transparent capture (root) runs each replica in its own network namespace with iptables, as in Kubernetes. Logs and state.json are in the state dir; the mesh is also recorded for this user, so \`status\`, \`down\`, \`proxy-status\` and \`proxy-config\` find it from any directory.`,
  options: {
    config: { type: 'string', multiple: true, value: 'DIR', help: 'mesh config directory or file, watched: edits apply live' },
    detach: { type: 'boolean', help: 'run in the background; print the summary once everything is ready and return' },
    'state-dir': { type: 'string', value: 'DIR', default: '.trellis', help: 'where state.json and logs/ go' },
    capture: { type: 'string', value: 'MODE', help: "explicit (default; no privileges) or transparent (root; network namespaces); default: each Workload's captureMode" },
    'gateway-port': { type: 'string', value: 'N', help: "local port for the gateway's first server port (default 8080 if free, else any free port; 0 = any free port)" },
    'start-timeout': { type: 'string', value: 'SECONDS', default: '15', help: 'how long each process may take to become ready' },
    'mesh-config': { type: 'string', value: 'FILE', help: 'Istio MeshConfig (trustDomain, outboundTrafficPolicy, enableAutoMtls, ...) for the control plane' },
    'plugin-ca-dir': { type: 'string', value: 'DIR', help: 'issue workload certificates from your PKI (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem); default: a self-signed root kept in STATE/ca' },
    with: { type: 'string', multiple: true, value: 'prometheus', help: "also run Prometheus (the `prometheus` binary on PATH) scraping every proxy's /stats/prometheus and the control plane's /metrics every 5 s; prints its URL" },
    'proxy-concurrency': { type: 'string', value: 'N', default: '1', help: "worker processes of the gateway and of each sidecar (a Workload's annotation proxy.istio.io/config: \"concurrency: N\" wins for its sidecars). One keeps a laptop mesh light and quick to start; Istio's sidecar default is 2" },
    supervise: { type: 'boolean', hidden: true, help: '' },
  },
  allowPositionals: false,
  examples: [
    { command: 'up', note: 'the demo in the foreground; Ctrl-C stops it' },
    { command: 'up --config my-mesh/ --detach', note: 'your own config (Istio / Gateway API YAML plus Workloads), in the background' },
    { command: 'up --config bookinfo.yaml --config bookinfo-gateway.yaml --config workloads/ --detach', note: "Istio's Bookinfo files unchanged, plus Workloads that run your processes (docs/getting-started.md)" },
  ],
  exitStatus: '0 ready (--detach) or stopped cleanly, 1 the config has errors or something failed to start (everything started is stopped again), 2 usage error.',
} as const satisfies CommandSpec;

export const down = {
  name: 'down',
  summary: 'stop everything `trellis up` started and clean up',
  usage: ['down [--state-dir DIR] [-q]'],
  description: 'Stops the mesh started by `trellis up`: the supervisor first (it stops workloads, sidecars, gateway and control plane in order), then any process still alive (after a supervisor crash); removes network namespaces and the bridge of transparent capture, then checks every recorded port is free. Nothing running is success.',
  options: {
    'state-dir': stateDir,
    quiet: { type: 'boolean', short: 'q', help: 'print only problems' },
  },
  allowPositionals: false,
  exitStatus: '0 stopped (or nothing was running), 1 something is left (a port still in use, a namespace still present), 2 usage error.',
} as const satisfies CommandSpec;

export const status = {
  name: 'status',
  summary: 'list workloads, proxies, their health, xDS sync and ports (of `trellis up`)',
  usage: ['status [--state-dir DIR] [-o table|json]'],
  description: "One row per process `trellis up` runs: role, workload, replica name (what `trellis proxy-config` accepts), pid, alive, for proxies their readiness (/healthz/ready) and xDS sync state (from the control plane's /debug/syncz), and their ports.",
  options: {
    'state-dir': stateDir,
    output: { type: 'string', short: 'o', value: 'FMT', default: 'table', help: 'table or json' },
  },
  allowPositionals: false,
  exitStatus: '0 a mesh is running, 1 nothing is running, 2 usage error.',
} as const satisfies CommandSpec;

/**
 * `trellis control`'s Kubernetes flags (config and registry from an API server; src/cli/control-kubernetes.ts
 * turns them into options): the same flags charts/trellis renders into the Deployment.
 */
export const kubernetesFlags = {
  kubeconfig: { type: 'string', value: 'PATH', help: 'read config and the registry from the cluster of this kubeconfig (outside the cluster); exclusive with --config' },
  kubernetes: { type: 'boolean', help: 'read from the cluster this pod runs in (service account)' },
  revision: { type: 'string', value: 'R', help: 'control plane revision (default: default); injects namespaces labelled istio.io/rev=R, and tags pointing at R' },
  'system-namespace': { type: 'string', value: 'NS', help: 'where this control plane runs (default trellis-system)' },
  'discovery-selectors': { type: 'string', value: 'JSON', help: 'label selectors of the namespaces to read (Istio discoverySelectors)' },
  'webhook-port': { type: 'string', value: 'N', help: 'admission webhook HTTPS port (default 15017; 0 = any free port)' },
  'no-webhook': { type: 'boolean', help: 'serve no admission webhook (no injection, no validation)' },
  'webhook-url': { type: 'string', value: 'URL', help: 'how the API server reaches the webhook (e.g. https://127.0.0.1:15017); default: the Service trellis[-R].NS.svc:443' },
  'no-validation': { type: 'boolean', help: 'do not register the validating webhook' },
  'validate-unlabelled': { type: 'boolean', help: 'also validate objects without an istio.io/rev label (on by default for the default revision; give it to one revision when all are revisioned)' },
  'injection-image': { type: 'string', value: 'IMAGE', help: 'image of the injected proxy and init container (default trellis:0.1.0)' },
  'injection-xds': { type: 'string', value: 'ADDR', help: 'xDS address injected proxies use (default trellis[-R].NS.svc:15010)' },
  'native-sidecars': { type: 'string', value: 'auto|true|false', help: 'inject the proxy as a native sidecar (default auto: Kubernetes >= 1.29)' },
  'hold-application-until-proxy-starts': { type: 'boolean', help: 'start app containers after the proxy is ready' },
  'no-status': { type: 'boolean', help: 'do not write status back (Gateway API, Istio validationMessages)' },
  'analysis-status': { type: 'boolean', help: "also write the analyzer's findings as Istio status.validationMessages" },
  'no-ca': { type: 'boolean', help: 'Kubernetes: run no mesh CA (injected proxies get no workload certificate). Without it the CA runs, its root from the Secret cacerts, else istio-ca-secret (created on first start) in --system-namespace; --ca-dir/--plugin-ca-dir use files instead' },
  'ca-tls-port': { type: 'string', value: 'N', help: 'Kubernetes: xDS and CreateCertificate over TLS (default 15012; 0 = any free port)' },
  'injection-ca-address': { type: 'string', value: 'ADDR', help: 'Kubernetes: the CA address injected proxies use (default trellis[-R].NS.svc:15012)' },
  'ca-token-audiences': { type: 'string', value: 'LIST', help: 'Kubernetes: audiences a service-account token must carry (default istio-ca)' },
} as const;

export const control = {
  name: 'control',
  summary: 'run the control plane (mesh config -> Envoy xDS over ADS)',
  usage: ['control [--config DIR]... [--host ADDR] [--xds-port N] [--debug-port N] [--ready-file PATH] [--log-level LEVEL] [--auto-allocate-vips] [--mesh-config FILE] [--ca-dir DIR | --plugin-ca-dir DIR] [--ca-token-dir DIR] [--workload-cert-ttl DURATION] [--ca-key-algorithm ALG] [--system-ca-bundle FILE]',
    'control --kubeconfig PATH | --kubernetes [--revision R] [Kubernetes options] [the options above but --config]'],
  description: 'Runs the control plane alone: loads and watches the config (from directories, or from a Kubernetes API server with --kubeconfig or --kubernetes, where it also serves the admission webhook for sidecar injection and validation and writes status), serves Envoy xDS v3 (SotW and delta ADS) to any proxy (ours, a stock Envoy, a proxyless gRPC client), and debug endpoints: /debug/syncz, /debug/config_dump?proxyID=, /debug/diagnostics, /ready, /metrics. Logs are JSON lines on stderr; a config problem is logged (file, resource, field) and the last good version stays in force.',
  options: {
    config: { type: 'string', multiple: true, value: 'DIR', help: 'mesh config directory or file, watched (default: examples/demo/mesh)' },
    host: { type: 'string', value: 'ADDR', default: '127.0.0.1', help: 'address to listen on' },
    'xds-port': { type: 'string', value: 'N', default: '15010', help: 'ADS gRPC port (0 = any free port)' },
    'debug-port': { type: 'string', value: 'N', default: '15014', help: 'debug HTTP port (0 = any free port)' },
    'ready-file': { type: 'string', value: 'PATH', help: 'write {"xds": port, "debug": port, "pid": n} here once listening' },
    'log-level': { type: 'string', value: 'LEVEL', default: 'info', help: 'debug, info, warn or error' },
    'auto-allocate-vips': { type: 'boolean', help: 'give Services without a clusterIP a VIP from 240.240.0.0/16 (transparent capture)' },
    'mesh-config': { type: 'string', value: 'FILE', help: 'Istio MeshConfig (trustDomain, rootNamespace, outboundTrafficPolicy, enableAutoMtls, pathNormalization, ...)' },
    'ca-dir': { type: 'string', value: 'DIR', help: 'run the mesh CA with a self-signed root kept in DIR (generated on first start)' },
    'plugin-ca-dir': { type: 'string', value: 'DIR', help: "run the mesh CA from an existing PKI: ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem (Istio's plug-in CA layout); watched for rotation" },
    'ca-token-dir': { type: 'string', value: 'DIR', help: 'per-workload tokens callers of CreateCertificate present (default DIR/tokens)' },
    'workload-cert-ttl': { type: 'string', value: 'DURATION', help: 'default workload certificate lifetime (default 24h)' },
    'ca-key-algorithm': { type: 'string', value: 'ALG', help: 'key of a generated self-signed root: ECDSA_P256 (default) or RSA_2048' },
    'system-ca-bundle': { type: 'string', value: 'FILE', help: 'the OS roots (PEM) that SIMPLE/MUTUAL DestinationRules without caCertificates are verified against; proxies read it at this path (default: env TRELLIS_SYSTEM_CA_BUNDLE, else the first of /etc/ssl/certs/ca-certificates.crt, /etc/pki/tls/certs/ca-bundle.crt, /etc/ssl/cert.pem, ... found here)' },
    ...kubernetesFlags,
  },
  allowPositionals: false,
} as const satisfies CommandSpec;

export const sdsAgent = {
  name: 'sds-agent',
  summary: 'serve a stock Envoy its mesh certificate over SDS (what pilot-agent does)',
  usage: ['sds-agent --socket PATH --ca-token-file FILE [options]'],
  description: "Gets the workload's mesh certificate for a stock Envoy and serves it over SDS (Istio's pilot-agent role): the workload key is made here, the SPIFFE certificate comes from the mesh CA by CSR (the workload token proves who it is) and is renewed at half-life; `default` and `ROOTCA` are served on a Unix socket that Envoy's bootstrap names as its `sds-grpc` cluster.",
  options: {
    socket: { type: 'string', value: 'PATH', help: 'Unix socket to serve SDS on (Istio: ./var/run/secrets/workload-spiffe-uds/socket)' },
    ca: { type: 'string', value: 'HOST:PORT', default: '127.0.0.1:15010', help: "the mesh CA (the control plane's xDS port)" },
    'ca-token-file': { type: 'string', value: 'FILE', help: 'the workload token (or env TRELLIS_CA_TOKEN)' },
    namespace: { type: 'string', value: 'NS', default: 'default', help: 'workload namespace' },
    'service-account': { type: 'string', value: 'SA', default: 'default', help: 'service account' },
    'trust-domain': { type: 'string', value: 'TD', default: 'cluster.local', help: 'SPIFFE trust domain' },
    'node-id': { type: 'string', value: 'ID', help: 'sent to the CA for its status (default sds-agent~<ns>~<sa>)' },
    'cert-ttl': { type: 'string', value: 'DURATION', help: "certificate lifetime to ask for (default: the CA's)" },
    'key-algorithm': { type: 'string', value: 'ALG', help: 'ECDSA_P256 (default) or RSA_2048' },
    'ready-file': { type: 'string', value: 'PATH', help: 'JSON written once the first certificate is held and the socket serves' },
    'log-level': { type: 'string', value: 'LEVEL', default: 'info', help: 'debug, info, warn or error' },
  },
  allowPositionals: false,
  environment: [{ name: 'TRELLIS_CA_TOKEN', help: 'the workload token, when --ca-token-file is not given' }],
  exitStatus: '0 stopped by SIGINT/SIGTERM, 1 failed, 2 usage error.',
} as const satisfies CommandSpec;

export const proxy = {
  name: 'proxy',
  summary: 'run the proxy (sidecar or gateway) driven by xDS',
  usage: ['proxy [--xds HOST:PORT] [--kind sidecar|router] [options]'],
  description: "Runs the data plane: a sidecar next to a workload or a router (gateway), configured entirely over xDS from the control plane. Its identity goes to the control plane as the xDS node, in Istio's conventions: node id `<kind>~<ip>~<workload>.<namespace>~<namespace>.svc.cluster.local` and metadata NAMESPACE, LABELS, SERVICE_ACCOUNT, WORKLOAD_NAME, INSTANCE_IPS, plus --metadata for the rest (explicit-capture port maps). It keeps serving its last good config when the control plane goes away.",
  options: {
    xds: { type: 'string', value: 'HOST:PORT', help: 'control plane ADS address (default 127.0.0.1:15010)' },
    kind: { type: 'string', value: 'KIND', help: 'sidecar (next to a workload) or router (gateway) (default sidecar)' },
    'node-id': { type: 'string', value: 'ID', help: 'xDS node id (default: Istio-style from kind, IP, workload and namespace)' },
    namespace: { type: 'string', value: 'NS', help: 'workload namespace (default default)' },
    workload: { type: 'string', value: 'NAME', help: 'workload (pod) name (default <hostname>-<pid>)' },
    labels: { type: 'string', value: 'K=V,...', help: 'workload labels (gateways: e.g. istio=ingressgateway)' },
    'service-account': { type: 'string', value: 'SA', help: 'service account (default default)' },
    ip: { type: 'string', value: 'ADDR', default: '127.0.0.1', help: 'instance IP' },
    metadata: { type: 'string', value: 'JSON', help: 'extra node metadata, e.g. {"TRELLIS_HTTP_PROXY_PORT":15080}' },
    bootstrap: { type: 'string', value: 'FILE', help: 'YAML/JSON with {xds, node: {id, metadata}, admin: {port}}; flags win' },
    'admin-port': { type: 'string', value: 'N', help: 'admin API port (default 15000; 0 = any, -1 = off)' },
    'admin-address': { type: 'string', value: 'ADDR', help: "address of the admin, health and Prometheus servers (default 127.0.0.1; transparent capture: 0.0.0.0 inside the workload's network namespace)" },
    'health-port': { type: 'string', value: 'N', default: '15021', help: '/healthz/ready port' },
    'prometheus-port': { type: 'string', value: 'N', default: '15090', help: '/stats/prometheus port' },
    'status-port': { type: 'string', value: 'N', help: "app probes (/app-health/...), readiness and metrics, like Istio's 15020 (default -1 = off; on when --app-probes is given: 15020)" },
    'app-probes': { type: 'string', value: 'JSON', help: "the pod's original HTTP probes by /app-health path (set by injection)" },
    'app-metrics-url': { type: 'string', value: 'URL', help: "the app's Prometheus metrics (http://127.0.0.1:PORT/PATH), merged after the proxy's own into the status port's /stats/prometheus as Istio merges them; turns the status port on (15020). Default: from $ISTIO_PROMETHEUS_ANNOTATIONS, as injection sets it" },
    'drain-timeout': { type: 'string', value: 'DURATION', default: '5s', help: 'how long in-flight requests may finish on shutdown' },
    concurrency: { type: 'string', value: 'N', default: '2', help: 'worker processes sharing the listeners, like an Istio sidecar; 1 serves in the main process; every process runs with node --max-semi-space-size=4 (an 8 MB young generation), --no-maglev and --no-memory-reducer-favors-memory (optimized code kept across idle) unless the operator sets them' },
    'ready-file': { type: 'string', value: 'PATH', help: 'write the bound ports as JSON here once the servers listen' },
    'log-level': { type: 'string', value: 'LEVEL', default: 'info', help: 'debug, info, warn or error' },
    'ca-token-file': { type: 'string', value: 'FILE', help: 'workload token for the mesh CA (or env TRELLIS_CA_TOKEN): the proxy gets its identity (spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>) from the CA and serves and uses mTLS (trellis up passes one per replica)' },
    'ca-address': { type: 'string', value: 'HOST:PORT', help: 'the CA (default: the --xds address)' },
    'ca-root-cert': { type: 'string', value: 'FILE', help: 'reach the CA over TLS, verified with these PEM roots (re-read at each request; Kubernetes: the mounted istio-ca-root-cert ConfigMap)' },
    'trust-domain': { type: 'string', value: 'TD', help: 'SPIFFE trust domain (default cluster.local)' },
    'cert-ttl': { type: 'string', value: 'DURATION', help: "workload certificate lifetime to ask for (default: the CA's, 24h)" },
    'key-algorithm': { type: 'string', value: 'ALG', help: 'ECDSA_P256 (default) or RSA_2048' },
  },
  allowPositionals: false,
  environment: [{ name: 'TRELLIS_CA_TOKEN', help: 'the workload token, instead of --ca-token-file' }],
} as const satisfies CommandSpec;

export const wait = {
  name: 'wait',
  summary: 'wait until a proxy is ready (start an app after its sidecar)',
  usage: ['wait [--health-port N | --url URL] [--timeout DURATION]'],
  description: "Blocks until a proxy's /healthz/ready answers 200, like Istio's `pilot-agent wait`, so an application can start after its sidecar: `trellis wait --health-port 15021 && exec my-app`.",
  options: {
    'health-port': { type: 'string', value: 'N', default: '15021', help: "the proxy's health port" },
    url: { type: 'string', value: 'URL', help: 'poll this URL instead of http://127.0.0.1:<health-port>/healthz/ready' },
    timeout: { type: 'string', value: 'DURATION', default: '60s', help: 'give up after this long' },
  },
  allowPositionals: false,
  exitStatus: '0 ready, 1 not ready before the timeout, 2 usage error.',
} as const satisfies CommandSpec;

export const sample = {
  name: 'sample',
  summary: 'run a sample workload (echo server, demo service)',
  usage: ['sample echo [--port N] [--host H] [--namespace NS] [--service S] [--pod P]', 'sample demo --name NAME [--version V] [--port N] [--upstream URL]...'],
  description: "Runs one of the sample workloads in the foreground; the demo's Workloads run `trellis sample demo`. `echo` answers every request with JSON describing it (method, path, headers, which pod answered). `demo` replies with its name, version and pod and the nested replies of its upstreams, calling them through HTTP_PROXY when set; failures and delays can be injected with FAIL_PERCENT, FAIL_STATUS, DELAY_MS, or per request with the headers `x-demo-fail: SERVICE[:VERSION]` and `x-demo-delay: SERVICE[:VERSION]=MS`. Flags win over the environment.",
  options: {
    port: { type: 'string', value: 'N', help: 'port to listen on (default $PORT, else any free port)' },
    host: { type: 'string', value: 'H', help: 'address to listen on (default $HOST, else 127.0.0.1)' },
    namespace: { type: 'string', value: 'NS', help: 'namespace to report (default $NAMESPACE, else default)' },
    service: { type: 'string', value: 'S', help: 'echo: service name to report (default $SERVICE_NAME, else echo)' },
    pod: { type: 'string', value: 'P', help: 'pod name to report (default $POD_NAME)' },
    name: { type: 'string', value: 'NAME', help: 'demo: service name (default $SERVICE_NAME; required)' },
    version: { type: 'string', value: 'V', help: 'demo: version to report (default $SERVICE_VERSION, else v1)' },
    upstream: { type: 'string', multiple: true, value: 'URL', help: 'demo: upstream to call on every request (default: $UPSTREAMS, comma-separated)' },
  },
  allowPositionals: true,
  environment: [
    { name: 'PORT, HOST, NAMESPACE, POD_NAME', help: 'defaults for the flags of the same meaning' },
    { name: 'SERVICE_NAME, SERVICE_VERSION', help: 'demo: name and version' },
    { name: 'UPSTREAMS', help: 'demo: comma-separated upstream URLs' },
    { name: 'FAIL_PERCENT, FAIL_STATUS', help: 'demo: answer this share of requests with this status (default 503)' },
    { name: 'DELAY_MS', help: 'demo: delay every reply' },
    { name: 'HTTP_PROXY', help: 'demo: send upstream calls through this proxy (the sidecar)' },
  ],
} as const satisfies CommandSpec;
