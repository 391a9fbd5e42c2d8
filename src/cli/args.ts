/**
 * A small wrapper over node:util parseArgs that turns its errors into usage errors
 * (exit code 2) with the verb's name, so every verb parses flags the same way.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { TrellisError } from '../errors.ts';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

/** Thrown for bad command-line usage; main() maps it to exit code 2. */
export class UsageError extends TrellisError {
  constructor(message: string, cause?: unknown) {
    super('CLI_USAGE', message, { cause });
    this.name = 'UsageError';
  }
}

/** Parses `args` against `options`; throws UsageError on unknown or malformed flags. */
export function parseCli<O extends OptionSpec>(verb: string, args: string[], options: O, allowPositionals = true) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError(`${verb}: ${(err as Error).message}`, err);
  }
}
