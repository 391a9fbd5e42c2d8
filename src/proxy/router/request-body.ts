/**
 * The request body as the router needs it: streamed to the first attempt while a copy is kept (up
 * to a limit) so retries, hedged attempts and mirrors can replay it. Envoy does the same (buffer
 * while streaming; past per_request_buffer_limit_bytes the request is no longer retriable).
 * Readers share one pull from the source, so a bidirectional gRPC stream is never deadlocked by
 * waiting for the whole body first.
 */

/** Default replay buffer (Envoy's default per-connection buffer limit is 1 MiB). */
export const DEFAULT_BODY_BUFFER_LIMIT = 1024 * 1024;

/** A request body that can be read by several attempts while it fits the limit. */
export class ReplayableBody {
  private readonly chunks: Uint8Array[] = [];
  private buffered = 0;
  private ended = false;
  private overflowed = false;
  private failed: unknown;
  private pulling: Promise<void> | undefined;
  private readonly source: AsyncIterator<Uint8Array> | undefined;
  private readonly limit: number;
  private readers = 0;

  constructor(source: AsyncIterable<Uint8Array> | null, limit: number) {
    this.source = source ? (source[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>) : undefined;
    this.limit = limit;
    if (!source) this.ended = true;
  }

  /** False once the body outgrew the buffer (later attempts cannot be sent). */
  get replayable(): boolean {
    return !this.overflowed;
  }

  /** True when there is no body at all. */
  get empty(): boolean {
    return this.source === undefined;
  }

  /** A fresh reader from the start of the body; null when the request has no body. */
  open(): AsyncIterable<Uint8Array> | null {
    if (!this.source) return null;
    if (this.overflowed) throw new Error('request body exceeded the replay buffer');
    const id = ++this.readers;
    const self = this;
    return {
      async *[Symbol.asyncIterator]() {
        let i = 0;
        for (;;) {
          if (i < self.chunks.length) {
            yield self.chunks[i++];
            continue;
          }
          if (self.failed !== undefined) throw self.failed;
          if (self.ended) return;
          // Past the limit chunks are no longer kept: only one reader (the first to get there) may go on.
          if (self.overflowed) {
            self.owner ??= id;
            if (self.owner !== id) throw new Error('request body exceeded the replay buffer');
          }
          await self.pull();
          if (self.lastChunk && (self.owner ?? id) === id) {
            self.owner = id;
            const c = self.lastChunk;
            self.lastChunk = undefined;
            yield c;
          }
        }
      },
    };
  }

  private owner: number | undefined;
  private lastChunk: Uint8Array | undefined;

  private pull(): Promise<void> {
    this.pulling ??= (async () => {
      try {
        const r = await this.source!.next();
        if (r.done) {
          this.ended = true;
          return;
        }
        const chunk = r.value;
        if (!this.overflowed && this.buffered + chunk.byteLength <= this.limit) {
          this.chunks.push(chunk);
          this.buffered += chunk.byteLength;
        } else {
          this.overflowed = true;
          this.lastChunk = chunk;
        }
      } catch (err) {
        this.failed = err;
      } finally {
        this.pulling = undefined;
      }
    })();
    return this.pulling;
  }
}

/** The body of every request without one: holds no state, so one object serves them all. */
export const NO_BODY = new ReplayableBody(null, 0);
