/**
 * The usage error every verb throws for bad command-line input; main() maps it to exit code 2.
 * Parsing itself is spec.ts (`parseCommand`), from each verb's spec.
 */
import { TrellisError } from '../errors.ts';

/** Thrown for bad command-line usage; main() maps it to exit code 2. */
export class UsageError extends TrellisError {
  constructor(message: string, cause?: unknown) {
    super('CLI_USAGE', message, { cause });
    this.name = 'UsageError';
  }
}
