/**
 * Mesh config for the control-plane benchmark: N Kubernetes Services (port 8080, named `svc-<i>`
 * in namespaces `ns-<i mod 10>`), each with one EndpointSlice of 3 endpoints, plus one
 * DestinationRule (subsets v1/v2) and one VirtualService (80/20 split) for every 10th service.
 * Written 100 services per file so a change rewrites one small file, like an operator would.
 * `changeFile` renders the file holding the VirtualServices with a different split, which changes
 * the RDS of every sidecar that sees those services.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const PerFile = 100;
export const Namespaces = 10;

/** Endpoints per service (EndpointSlice size); set by `configureEndpoints`. */
let endpointsPerService = 3;

/** Sets the number of endpoints each service's EndpointSlice holds (default 3). */
export function configureEndpoints(n: number): void {
  endpointsPerService = n;
}

function service(i: number, generation = 0): string {
  const ns = `ns-${i % Namespaces}`;
  const name = `svc-${i}`;
  // A new generation moves every endpoint to another address (a rolling restart of the pods).
  const a = (k: number) => `10.${(i >> 8) & 255}.${i & 255}.${k + 1 + (generation % 2) * 100}`;
  return `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${ns}}
spec:
  selector: {app: ${name}}
  ports:
  - {name: http, port: 8080, targetPort: 8080}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${name}-1
  namespace: ${ns}
  labels: {kubernetes.io/service-name: ${name}}
addressType: IPv4
ports:
- {name: http, port: 8080}
endpoints:
${Array.from({ length: endpointsPerService }, (_, k) => `- {addresses: ["${a(k)}"], conditions: {ready: true}}`).join('\n')}
`;
}

function policy(i: number, weight: number): string {
  const ns = `ns-${i % Namespaces}`;
  const host = `svc-${i}.${ns}.svc.cluster.local`;
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc-${i}, namespace: ${ns}}
spec:
  host: ${host}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc-${i}, namespace: ${ns}}
spec:
  hosts: [${host}]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: ${host}, subset: v2}}]
  - route:
    - {destination: {host: ${host}, subset: v1}, weight: ${weight}}
    - {destination: {host: ${host}, subset: v2}, weight: ${100 - weight}}
`;
}

function write(dir: string, name: string, text: string): void {
  const tmp = join(dir, `.${name}.tmp`);
  writeFileSync(tmp, text);
  renameSync(tmp, join(dir, name));
}

/** The name of the file `changeFile` rewrites. */
export const ChangeFileName = 'policies-0.yaml';

/** The policies of the first file (services 0..99, every 10th) with v1 weight `weight`. */
export function changeFileText(services: number, weight: number): string {
  const docs: string[] = [];
  for (let i = 0; i < Math.min(services, PerFile); i += 10) docs.push(policy(i, weight));
  return docs.join('---\n');
}

/** The name of the file `changeEndpointsFile` rewrites (services 0..99). */
export const EndpointsFileName = 'services-0.yaml';

/** Services 0..99 and their EndpointSlices, every endpoint at the address of `generation`. */
export function endpointsFileText(services: number, generation: number): string {
  const docs: string[] = [];
  for (let i = 0; i < Math.min(services, PerFile); i++) docs.push(service(i, generation));
  return docs.join('---\n');
}

/** Rewrites the first services file atomically: 100 services' endpoints move. */
export function changeEndpointsFile(dir: string, services: number, generation: number): void {
  write(dir, EndpointsFileName, endpointsFileText(services, generation));
}

/** Rewrites the change file atomically with a new v1 weight. */
export function changeFile(dir: string, services: number, weight: number): void {
  write(dir, ChangeFileName, changeFileText(services, weight));
}

/** Writes the whole mesh into `dir` (created if needed). */
export function writeMesh(dir: string, services: number): void {
  mkdirSync(dir, { recursive: true });
  for (let start = 0; start < services; start += PerFile) {
    const docs: string[] = [];
    const pol: string[] = [];
    for (let i = start; i < Math.min(services, start + PerFile); i++) {
      docs.push(service(i));
      if (i % 10 === 0) pol.push(policy(i, 80));
    }
    write(dir, `services-${start / PerFile}.yaml`, docs.join('---\n'));
    if (start === 0) write(dir, ChangeFileName, pol.join('---\n'));
    else write(dir, `policies-${start / PerFile}.yaml`, pol.join('---\n'));
  }
}
