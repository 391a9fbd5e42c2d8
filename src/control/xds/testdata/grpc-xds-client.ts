/**
 * Child-process half of the proxyless gRPC test: registers @grpc/grpc-js-xds (its bootstrap is
 * process-global, read from GRPC_XDS_BOOTSTRAP_CONFIG), makes one unary call to `xds:///TARGET`
 * and prints `{"ok":true,"reply":...}` or `{"ok":false,"error":...}` on stdout.
 * Usage: node grpc-xds-client.ts TARGET MESSAGE
 */
import { Client, credentials } from '@grpc/grpc-js';
import { register } from '@grpc/grpc-js-xds';

register();
const [target, message] = process.argv.slice(2);
const client = new Client(`xds:///${target}`, credentials.createInsecure());
const deadline = new Date(Date.now() + 15_000);
client.makeUnaryRequest(
  '/trellis.test.Echo/Echo',
  (b: Buffer) => b,
  (b: Buffer) => b,
  Buffer.from(message ?? ''),
  { deadline },
  (err, reply) => {
    process.stdout.write(JSON.stringify(err ? { ok: false, error: `${err.code}: ${err.details}` } : { ok: true, reply: reply?.toString() }) + '\n');
    client.close();
    process.exit(0);
  },
);
