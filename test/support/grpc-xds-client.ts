/**
 * Child-process proxyless gRPC client for end-to-end tests (the @grpc/grpc-js-xds bootstrap is
 * process-global, read from GRPC_XDS_BOOTSTRAP_CONFIG). Stays up and takes commands as JSON lines
 * on stdin: `{"id":1,"target":"echo.default.svc.cluster.local:7070","n":100,"metadata":{"end-user":"jason"}}`
 * makes n unary calls to the conformance echo service through `xds:///<target>` and answers one
 * JSON line `{"id":1,"pods":{"echo-v1":80,...},"errors":{"14: ...":3}}` on stdout.
 */
import { createInterface } from 'node:readline';
import { Client, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { register } from '@grpc/grpc-js-xds';
import { decodeEchoResponse, encodeEchoRequest, GrpcEchoService } from '../../src/samples/grpc-echo-codec.ts';

register();

interface Command {
  id: number;
  target: string;
  n: number;
  metadata?: Record<string, string>;
  concurrency?: number;
  deadlineMs?: number;
}

const clients = new Map<string, Client>();
function clientFor(target: string): Client {
  let c = clients.get(target);
  if (c === undefined) {
    c = new Client(`xds:///${target}`, credentials.createInsecure());
    clients.set(target, c);
  }
  return c;
}

function call(client: Client, md: Metadata, deadlineMs: number): Promise<{ pod?: string; error?: string }> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      `/${GrpcEchoService}/Echo`,
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from(encodeEchoRequest()),
      md,
      { deadline: new Date(Date.now() + deadlineMs) },
      (err: ServiceError | null, reply?: Buffer) => {
        if (err) resolve({ error: `${err.code}: ${err.details}` });
        else resolve({ pod: decodeEchoResponse(reply ?? Buffer.alloc(0)).assertions?.context.pod ?? '?' });
      },
    );
  });
}

async function run(cmd: Command): Promise<void> {
  const client = clientFor(cmd.target);
  const md = new Metadata();
  for (const [k, v] of Object.entries(cmd.metadata ?? {})) md.set(k, v);
  const pods: Record<string, number> = {};
  const errors: Record<string, number> = {};
  let next = 0;
  const worker = async () => {
    while (next < cmd.n) {
      next++;
      const r = await call(client, md, cmd.deadlineMs ?? 10_000);
      if (r.pod !== undefined) pods[r.pod] = (pods[r.pod] ?? 0) + 1;
      else errors[r.error!] = (errors[r.error!] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, cmd.concurrency ?? 10) }, worker));
  process.stdout.write(JSON.stringify({ id: cmd.id, pods, errors }) + '\n');
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (line.trim() === '') return;
  const cmd = JSON.parse(line) as Command;
  run(cmd).catch((err: unknown) => process.stdout.write(JSON.stringify({ id: cmd.id, pods: {}, errors: { [String(err)]: cmd.n } }) + '\n'));
});
rl.on('close', () => {
  for (const c of clients.values()) c.close();
  process.exit(0);
});
