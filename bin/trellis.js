#!/usr/bin/env node
// The `trellis` command. Node 24 runs our TypeScript sources directly (type stripping),
// so this shim only checks the runtime and hands over to src/cli/main.ts.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(
    `trellis: needs Node.js 24 or newer (this is ${process.version}). ` +
      `Run it through npm (npx trellis ...), which uses the project's pinned node@24.\n`,
  );
  process.exit(2);
}
// Node flags a command needs (src/cli/node-flags.ts) are applied first: this may re-exec the process.
(await import('../src/cli/node-flags.ts')).execWithNodeFlags(process.argv.slice(2));
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
