/**
 * The mesh profile's in-pod client process (transparent capture): started with `ip netns exec`
 * inside the client pod's network namespace (as root, so its connections are captured by the
 * pod's iptables and go through the pod's sidecar like an application's), it reads one JSON
 * request per stdin line (`{id, http}` or `{id, grpc}`, the clients.ts specs with an `address`)
 * and writes `{id, reply}` per stdout line. It prints `ready` first and exits when stdin closes.
 */
import { createInterface } from 'node:readline';
import { sendGrpc, sendHttp, type GrpcRequestSpec, type HttpRequestSpec, type Reply } from './clients.ts';

interface AgentRequest {
  id: number;
  http?: HttpRequestSpec;
  grpc?: GrpcRequestSpec;
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let req: AgentRequest;
  try {
    req = JSON.parse(line) as AgentRequest;
  } catch {
    return;
  }
  const run: Promise<Reply> = req.grpc !== undefined ? sendGrpc(req.grpc) : req.http !== undefined ? sendHttp(req.http) : Promise.resolve({ status: 0, headers: {}, error: 'agent: empty request' });
  void run.catch((err: Error) => ({ status: 0, headers: {}, error: err.message })).then((reply) => process.stdout.write(JSON.stringify({ id: req.id, reply }) + '\n'));
});
rl.on('close', () => process.exit(0));
process.stdout.write('ready\n');
