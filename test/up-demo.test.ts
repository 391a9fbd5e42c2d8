/**
 * End to end, explicit capture (the default, unprivileged): the demo walkthrough of
 * test/support/demo-suite.ts, with web-api's calls to recommendation made through its sidecar's
 * outbound listener for port 8080 with Host recommendation:8080 (the route table web-api's own
 * calls use). test/up-transparent.test.ts runs the same suite in network namespaces.
 */
import { skipUnlessTools } from './support/skip.ts';
import { demoSuite } from './support/demo-suite.ts';
import { curl } from './support/trellis-up.ts';

demoSuite({
  capture: 'explicit',
  skip: skipUnlessTools('curl'),
  call: (mesh, headers) => {
    const web = mesh.state.processes.find((p) => p.role === 'sidecar' && p.workload === 'web-api-v1')!;
    return curl(`http://127.0.0.1:${web.ports['outbound:8080']}/`, { host: 'recommendation:8080', ...headers });
  },
});
