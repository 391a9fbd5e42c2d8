/**
 * The `trellis` command line: finds the verb (commands.ts), loads only that verb's module and
 * hands it the rest of the arguments. Exit codes follow one rule everywhere: 0 ok, 1 the verb ran
 * and found a problem, 2 usage error.
 */
import { describeError, TrellisError } from '../errors.ts';
import { UsageError } from './args.ts';
import { commands, findCommand } from './commands.ts';
import { parseCommand, renderHelp } from './spec.ts';

/** What a verb module exports. */
export interface Verb {
  /** Runs the verb; resolves to the process exit code. */
  run(args: string[]): Promise<number>;
}

/** The version `trellis --version` prints. */
export const VERSION = '0.1.0';

/** `trellis --help`. */
export function topLevelHelp(): string {
  const lines = ['usage: trellis <command> [options]', '', 'commands:'];
  for (const { spec } of commands) lines.push(`  ${spec.name.padEnd(14)} ${spec.summary}`);
  lines.push('', 'Run `trellis <command> --help` for a command\'s options; docs/reference/cli.md has them all.');
  return lines.join('\n') + '\n';
}

/** Entry point used by bin/trellis.js; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const about = name === 'help' && rest[0] !== undefined ? findCommand(rest[0]) : undefined;
    if (about !== undefined) return main([rest[0], '--help']);
    (name === undefined ? process.stderr : process.stdout).write(topLevelHelp());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === 'version') {
    // Which code runs: the compiled dist/ or the TypeScript sources (bin/entry.js decides).
    const from = import.meta.url.endsWith('.ts') ? 'TypeScript sources' : 'compiled dist/';
    process.stdout.write(`trellis ${VERSION} (node ${process.versions.node}, ${from})\n`);
    return 0;
  }
  const entry = findCommand(name);
  if (entry === undefined) {
    process.stderr.write(`trellis: unknown command '${name}'\n${topLevelHelp()}`);
    return 2;
  }
  try {
    // Flags are checked against the verb's spec before its code loads: `--help` and usage errors
    // cost no verb module.
    if (parseCommand(entry.spec, rest).values.help === true) {
      process.stdout.write(renderHelp(entry.spec));
      return 0;
    }
    const { verb } = await entry.load();
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
