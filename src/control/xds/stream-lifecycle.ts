/**
 * What a SotW and a delta ADS stream share once their per-mode request handling is set up: the
 * push on `refresh()` (regenerate, CDS first, then the other types in order unless the warming
 * gate holds them), ending, and tearing down exactly once on any of the stream's close events.
 */
import type { EncodedResource } from './resources.ts';
import { pushOrder } from './resources.ts';
import type { ProxySession } from './session.ts';
import type { WarmingGate } from './warming.ts';
import { TypeUrl } from '../../xds/types.ts';

/** A connected stream as the server sees it. */
export interface StreamHandle {
  readonly session: ProxySession;
  /** Regenerates and pushes what changed (queued behind pending requests). */
  refresh(): void;
  /** Ends the stream (server shutdown). */
  end(): void;
}

export interface StreamParts<S, Req> {
  call: { on(event: string, listener: (...args: never[]) => void): unknown; end(): void };
  session: ProxySession;
  gate: WarmingGate;
  types: ReadonlyMap<string, S>;
  /** Sends one type if its content moved on (or `force`); true when something was sent. */
  send(typeUrl: string, st: S, force: boolean): boolean;
  edsSubscribed(name: string): boolean;
  subscribedClusters(): ReadonlyMap<string, EncodedResource>;
  handle(req: Req): Promise<void>;
  fail(err: unknown): void;
  onClose(h: StreamHandle): void;
}

/** Wires the stream's events; returns its handle and the idempotent teardown. */
export function runStream<S, Req>(p: StreamParts<S, Req>): { handle: StreamHandle; finish(): void } {
  const { session, gate, types, send } = p;
  let closed = false;
  const handle: StreamHandle = {
    session,
    refresh(): void {
      session.dirty = true;
      session.run(async () => {
        if (session.proxy === undefined || !session.dirty) return;
        if (!(await session.regenerate())) return;
        let order = pushOrder(types.keys());
        const cds = types.get(TypeUrl.Cluster);
        if (cds !== undefined) {
          order = order.filter((t) => t !== TypeUrl.Cluster);
          if (send(TypeUrl.Cluster, cds, false)) order = gate.afterCds(order, p.edsSubscribed, p.subscribedClusters());
        }
        for (const typeUrl of order) if (!gate.isHeld(typeUrl)) send(typeUrl, types.get(typeUrl) as S, false);
      }, p.fail);
    },
    end(): void {
      finish();
      p.call.end();
    },
  };
  function finish(): void {
    if (closed) return;
    closed = true;
    gate.close();
    session.close();
    p.onClose(handle);
  }
  const call = p.call as { on(event: string, listener: (...args: unknown[]) => void): unknown; end(): void };
  call.on('data', (req) => session.run(() => p.handle(req as Req), p.fail));
  call.on('end', () => {
    finish();
    call.end();
  });
  call.on('error', () => finish());
  call.on('cancelled', () => finish());
  call.on('close', () => finish());
  return { handle, finish };
}
