/**
 * A small raw ADS client for the server's tests: opens a SotW or delta stream with grpc-js and
 * the shared service definition, writes requests as given, and hands back responses in order
 * (with a timeout, so a missing response fails the test instead of hanging it).
 */
import { credentials, makeGenericClientConstructor, type ClientDuplexStream } from '@grpc/grpc-js';
import {
  adsServiceDefinition,
  type DeltaDiscoveryRequestMsg,
  type DeltaDiscoveryResponseMsg,
  type DiscoveryRequestMsg,
  type DiscoveryResponseMsg,
} from '../../../xds/ads-wire.ts';

const AdsClient = makeGenericClientConstructor(adsServiceDefinition, 'AggregatedDiscoveryService');

type Fn = (...args: unknown[]) => unknown;

export class TestStream<Req, Res> {
  readonly #call: ClientDuplexStream<Req, Res>;
  readonly #buffer: Res[] = [];
  readonly #waiters: Array<(r: Res) => void> = [];
  readonly #client: InstanceType<typeof AdsClient>;
  ended = false;
  error: Error | undefined;

  constructor(client: InstanceType<typeof AdsClient>, method: string) {
    this.#client = client;
    this.#call = (client as unknown as Record<string, Fn>)[method].call(client) as ClientDuplexStream<Req, Res>;
    this.#call.on('data', (r: Res) => {
      const w = this.#waiters.shift();
      if (w !== undefined) w(r);
      else this.#buffer.push(r);
    });
    this.#call.on('error', (e: Error) => {
      this.error = e;
    });
    this.#call.on('end', () => {
      this.ended = true;
    });
  }

  send(req: Req): void {
    this.#call.write(req);
  }

  /** The next response, or a rejection after `timeoutMs`. */
  next(timeoutMs = 3000): Promise<Res> {
    const buffered = this.#buffer.shift();
    if (buffered !== undefined) return Promise.resolve(buffered);
    return new Promise<Res>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new Error(`no response within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (r: Res): void => {
        clearTimeout(timer);
        resolve(r);
      };
      this.#waiters.push(waiter);
    });
  }

  /** Resolves true when no response arrives within `ms`. */
  async quiet(ms = 300): Promise<boolean> {
    if (this.#buffer.length > 0) return false;
    try {
      await this.next(ms);
      return false;
    } catch {
      return true;
    }
  }

  close(): void {
    this.#call.end();
    this.#call.cancel();
    this.#client.close();
  }
}

export function sotwStream(port: number): TestStream<DiscoveryRequestMsg, DiscoveryResponseMsg> {
  return new TestStream(new AdsClient(`127.0.0.1:${port}`, credentials.createInsecure()), 'StreamAggregatedResources');
}

export function deltaStream(port: number): TestStream<DeltaDiscoveryRequestMsg, DeltaDiscoveryResponseMsg> {
  return new TestStream(new AdsClient(`127.0.0.1:${port}`, credentials.createInsecure()), 'DeltaAggregatedResources');
}
