/**
 * The `trellis` command line: parses the verb and hands the rest of the arguments to that verb's
 * module (one file per verb in this folder, loaded lazily so `trellis analyze` does not pay for
 * the proxy's imports). Exit codes follow one rule everywhere: 0 ok, 1 the verb ran and found a
 * problem, 2 usage error.
 */
import { describeError, TrellisError } from '../errors.ts';
import { UsageError } from './args.ts';

/** What a verb module exports. */
export interface Verb {
  /** One line for `trellis help`. */
  readonly summary: string;
  /** Runs the verb; resolves to the process exit code. */
  run(args: string[]): Promise<number>;
}

/** Every verb; each is `src/cli/<name>.ts` exporting `verb: Verb`. */
const verbNames = ['up', 'down', 'status', 'analyze', 'control', 'proxy', 'proxy-status', 'proxy-config', 'mtls', 'sds-agent', 'wait', 'sample', 'capture', 'tag', 'manifest'] as const;

const verbs: Record<string, () => Promise<{ verb: Verb }>> = Object.fromEntries(
  verbNames.map((name) => [name, () => import(`./${name}.ts`) as Promise<{ verb: Verb }>]),
);

async function printHelp(out: NodeJS.WritableStream): Promise<void> {
  const lines = ['usage: trellis <command> [options]', '', 'commands:'];
  for (const name of Object.keys(verbs)) {
    let summary = '';
    try {
      summary = (await verbs[name]()).verb.summary;
    } catch {
      summary = '(not available in this build)';
    }
    lines.push(`  ${name.padEnd(14)} ${summary}`);
  }
  lines.push('', 'Run `trellis <command> --help` for a command\'s options.');
  out.write(lines.join('\n') + '\n');
}

/** Entry point used by bin/trellis.js; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    await printHelp(process.stdout);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === 'version') {
    process.stdout.write('trellis 0.1.0\n');
    return 0;
  }
  const load = verbs[name];
  if (load === undefined) {
    process.stderr.write(`trellis: unknown command '${name}'\n`);
    await printHelp(process.stderr);
    return 2;
  }
  try {
    const { verb } = await load();
    return await verb.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`trellis ${err.message}\n`);
      return 2;
    }
    const code = err instanceof TrellisError ? ` [${err.code}]` : '';
    process.stderr.write(`trellis ${name}: ${describeError(err)}${code}\n`);
    return 1;
  }
}
