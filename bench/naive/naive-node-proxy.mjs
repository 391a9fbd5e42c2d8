// The `naive-node` bench path: the smallest keep-alive Node.js HTTP/1.1 proxy, the floor Node
// itself sets for requests per CPU-second (issue 16). No routing, retries, stats or header
// rewriting: every request goes to one upstream over a keep-alive agent, bodies piped both ways.
// Plain JavaScript so Node loads no TypeScript stripper (Trellis runs its compiled dist/ too).
// usage: node naive-node-proxy.mjs <listen port> <upstream port>
import http from 'node:http';

const [listenPort, upstreamPort] = process.argv.slice(2).map(Number);
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

http.createServer((req, res) => {
  const up = http.request({ host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers, agent }, (ur) => {
    res.writeHead(ur.statusCode ?? 502, ur.headers);
    ur.pipe(res);
  });
  up.on('error', () => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
  req.pipe(up);
}).listen(listenPort, '127.0.0.1', () => process.stdout.write(`listening ${listenPort}\n`));

process.on('SIGTERM', () => process.exit(0));
