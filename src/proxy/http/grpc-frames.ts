/**
 * Counts gRPC messages in a body as it streams (the 5-byte length-prefixed framing of gRPC over
 * HTTP/2: a flag byte, a 4-byte big-endian length, the message), for Istio's
 * istio_request_messages_total / istio_response_messages_total. A message counts when its header is
 * complete, as Envoy's grpc_stats filter counts frames; chunk boundaries may fall anywhere.
 */
export class GrpcFrameCounter {
  #skip = 0;
  #header = 0;
  #length = 0;

  /** Feeds a chunk; returns how many message headers it completed. */
  push(chunk: Uint8Array): number {
    let n = 0;
    let i = 0;
    while (i < chunk.length) {
      if (this.#skip > 0) {
        const take = Math.min(this.#skip, chunk.length - i);
        this.#skip -= take;
        i += take;
        continue;
      }
      if (this.#header === 0) this.#length = 0;
      else this.#length = this.#length * 256 + chunk[i];
      this.#header++;
      i++;
      if (this.#header === 5) {
        n++;
        this.#header = 0;
        this.#skip = this.#length;
      }
    }
    return n;
  }
}
