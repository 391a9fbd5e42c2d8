/**
 * The one error base class of the project. Every error we raise on purpose carries a stable
 * `code` (callers and tests match on it, never on the message), a message that says where it
 * happened ("route reviews/0: cluster 'x' not found") and, where there is one, the `cause`.
 */
export class TrellisError extends Error {
  /** Stable machine-readable code, e.g. `CONFIG_PARSE`, `XDS_NACK`. */
  readonly code: string;
  /** Extra structured context for logs (resource name, file, field...). */
  readonly context: Readonly<Record<string, unknown>>;

  constructor(code: string, message: string, options: { cause?: unknown; context?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TrellisError';
    this.code = code;
    this.context = Object.freeze({ ...(options.context ?? {}) });
  }
}

/** True when `err` is a TrellisError with the given code. */
export function hasCode(err: unknown, code: string): err is TrellisError {
  return err instanceof TrellisError && err.code === code;
}

/** A human message for any thrown value, for logs and CLI output. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
