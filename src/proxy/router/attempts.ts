/**
 * Drives the upstream attempts of one routed request: first attempt, retries with back-off
 * (retry_on conditions, num_retries, the cluster's retry circuit breaker via tryAcquireRetry),
 * per-try timeouts, the route timeout, and hedging. Hedging (HedgePolicy.hedge_on_per_try_timeout
 * with a per_try_timeout): when an attempt's per-try timeout fires, another attempt starts WITHOUT
 * cancelling the first; the first usable response wins and the other attempts are cancelled
 * through their cancel tokens (each attempt is its own token: no AbortController per attempt). Without hedging a per-try timeout cancels the attempt and retries.
 * The winning response is streamed to the downstream with backpressure, trailers included.
 */
import type { BodySink, ClusterHandle, HeaderMap, ResponseReceiver, UpstreamRequestInit, UpstreamResponse } from '../upstream/types.ts';
import { CancelToken, UpstreamError } from '../upstream/types.ts';
import { RESPONSE_FIELDS } from '../upstream/connection-fields.ts';
import type { HttpStream } from '../http/stream.ts';
import type { HedgePolicy, RetryPolicy } from './route-action.ts';
import { LocalReplyBody } from '../http/stream-info.ts';
import { backoffMs, isRetriableFailure, isRetriableResponse } from './retry-state.ts';
import { deadlineList, type DeadlineEntry, type DeadlineList } from '../http/deadline-list.ts';
import type { ReplayableBody } from './request-body.ts';
import { Readable } from 'node:stream';

/** Each attempt's request, but for what every attempt fills in itself. */
export type RequestTemplate = Omit<UpstreamRequestInit, 'cancel' | 'body' | 'isRetry'>;

/**
 * Everything the driver needs for one request: the template of each attempt's request (its own
 * fields: one object per request, not a plan and a template), and how to run the attempts.
 */
export interface AttemptPlan extends RequestTemplate {
  readonly stream: HttpStream;
  readonly cluster: ClusterHandle;
  readonly body: ReplayableBody;
  readonly timeoutMs: number;
  readonly perTryTimeoutMs: number;
  readonly retry: RetryPolicy | undefined;
  readonly numRetries: number;
  readonly hedge: HedgePolicy | undefined;
  readonly attemptCountHeader: boolean;
  readonly attemptCountInResponse: boolean;
  /** Router suppress_envoy_headers: no x-envoy-upstream-service-time on responses. */
  readonly suppressEnvoyHeaders: boolean;
  readonly random: () => number;
}


/**
 * One attempt: the token the pool hears its cancellation through, and the receiver of its answer
 * (ClusterHandle.send: no promise, reaction and closures per attempt).
 */
class Attempt extends CancelToken implements ResponseReceiver {
  timer: NodeJS.Timeout | undefined = undefined;
  retrySlot: boolean;
  private readonly driver: Driver;

  constructor(driver: Driver, retrySlot: boolean) {
    super();
    this.driver = driver;
    this.retrySlot = retrySlot;
  }

  onUpstreamResponse(res: UpstreamResponse): void {
    this.driver.onResponse(this, res);
  }

  onUpstreamError(err: unknown): void {
    this.driver.onError(this, err);
  }
}

/**
 * Start the attempts. The driver runs on its own from here (the stream's response ends or is
 * reset through it); nothing waits on it, so no promise is made per request.
 */
export function runAttempts(plan: AttemptPlan): void {
  new Driver(plan).start();
}

/** The first attempt's endpoints to avoid under previous_hosts: none (pools only read the list). */
const NO_ENDPOINTS: readonly string[] = Object.freeze([]);

function onPerTryTimer(d: Driver, a: Attempt): void {
  d.onPerTryTimeout(a);
}

/** A cluster without `send`: its promise answers the attempt. */
function requestByPromise(cluster: ClusterHandle, init: UpstreamRequestInit, a: Attempt): void {
  cluster.request(init).then((res) => a.onUpstreamResponse(res), (err: unknown) => a.onUpstreamError(err));
}

/** A throw from the cluster reaches the attempt as a rejection would: in a microtask. */
function failLater(a: Attempt, err: unknown): void {
  queueMicrotask(() => a.onUpstreamError(err));
}

class Driver implements BodySink, DeadlineEntry {
  private readonly p: AttemptPlan;
  /**
   * Attempts started and not yet answered or cancelled: the first one in `single`; only hedging
   * (or a retry racing a late answer) has more, in `more`. No Set per request.
   */
  private single: Attempt | undefined;
  private more: Attempt[] | undefined;
  private done = false;
  private retriesUsed = 0;
  private attempts = 0;
  /** The route timeout waits in a shared list (deadline-list.ts), not in a Timeout per request. */
  private globalTimer: DeadlineList | undefined;
  deadlinePrev: DeadlineEntry | undefined = undefined;
  deadlineNext: DeadlineEntry | undefined = undefined;
  deadlineList: DeadlineList | undefined = undefined;
  deadlineFrom = 0;
  private backoffTimer: NodeJS.Timeout | undefined;
  private readonly startedAt = performance.now();
  /** Endpoints tried so far, kept only when the retry policy avoids previous hosts. */
  private previous: string[] | undefined;
  private retriesExhausted = false;

  constructor(plan: AttemptPlan) {
    this.p = plan;
  }

  private get outstandingCount(): number {
    return (this.single === undefined ? 0 : 1) + (this.more?.length ?? 0);
  }

  private isOutstanding(a: Attempt): boolean {
    return this.single === a || (this.more !== undefined && this.more.includes(a));
  }

  private addOutstanding(a: Attempt): void {
    if (this.single === undefined) this.single = a;
    else (this.more ??= []).push(a);
  }

  private removeOutstanding(a: Attempt): void {
    if (this.single === a) {
      this.single = this.more !== undefined && this.more.length > 0 ? this.more.shift() : undefined;
      return;
    }
    const i = this.more?.indexOf(a) ?? -1;
    if (i >= 0) this.more!.splice(i, 1);
  }

  /** Cancel every outstanding attempt. */
  private cancelOutstanding(): void {
    while (this.single !== undefined) this.cancel(this.single);
  }

  private rememberEndpoint(endpoint: string): void {
    if (!this.p.retry?.avoidPreviousHosts) return;
    // A list made with its first endpoint (a `[]` grows to 17 slots at its first push).
    if (this.previous === undefined) this.previous = [endpoint];
    else this.previous.push(endpoint);
  }

  /** The downstream went away (HttpStream.downstreamWatcher). */
  onDownstreamAbort(): void {
    const f = this.p.stream.info.responseFlags;
    // Our own stream timeouts (SI/DT) abort the downstream signal too; only a client going away is DC.
    this.abortAll(f.has('SI') || f.has('DT') ? undefined : 'DC');
  }

  start(): void {
    if (this.p.stream.downstreamAborted) {
      this.done = true;
      this.p.stream.info.responseFlags.add('DC');
      return;
    }
    if (this.p.timeoutMs > 0) {
      this.globalTimer = deadlineList(this.p.timeoutMs);
      this.globalTimer.start(this);
    }
    this.p.stream.downstreamWatcher = this;
    this.startAttempt(false, false);
  }

  private end(): void {
    this.globalTimer?.stop(this);
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
    if (this.p.stream.downstreamWatcher === this) this.p.stream.downstreamWatcher = undefined;
    this.cancelOutstanding();
  }

  private cancel(a: Attempt): void {
    if (a.timer) clearTimeout(a.timer);
    this.removeOutstanding(a);
    a.cancel();
    this.release(a);
  }

  private release(a: Attempt): void {
    if (a.retrySlot) {
      a.retrySlot = false;
      this.p.cluster.releaseRetry();
    }
  }

  private startAttempt(isRetry: boolean, retrySlot: boolean): void {
    const { stream } = this.p;
    this.attempts++;
    stream.info.attemptCount = this.attempts;
    const a = new Attempt(this, retrySlot);
    this.addOutstanding(a);
    // Pools only read an attempt's headers: a copy is needed only where attempts differ.
    let headers = this.p.headers;
    if (this.p.attemptCountHeader) headers = { ...headers, 'x-envoy-attempt-count': String(this.attempts) };
    let body: AsyncIterable<Uint8Array> | null;
    try {
      body = this.p.body.open();
    } catch {
      this.cancel(a);
      this.fail(new UpstreamError('UR', 'request body not replayable', { resetReason: 'remote reset' }));
      return;
    }
    if (this.p.perTryTimeoutMs > 0) a.timer = setTimeout(onPerTryTimer, this.p.perTryTimeoutMs, this, a);
    // Every field named (one object of a fixed shape): a spread of the template costs more.
    const b = this.p;
    const init: UpstreamRequestInit = {
      method: b.method, path: b.path, authority: b.authority, scheme: b.scheme, headers, body, cancel: a,
      hashKey: b.hashKey, isRetry, grpc: b.grpc,
      previousEndpoints: this.previous !== undefined ? this.previous.slice() : this.p.retry?.avoidPreviousHosts ? NO_ENDPOINTS : undefined,
      hostReselects: this.p.retry?.hostSelectionRetryMaxAttempts,
      originalDestination: b.originalDestination, downstreamProtocol: b.downstreamProtocol,
    };
    const cluster = this.p.cluster;
    // No closure in this method (they would cost it a context per call): the ones a cluster
    // without `send`, or a throw, needs are in their own functions.
    try {
      if (cluster.send !== undefined) cluster.send(init, a);
      else requestByPromise(cluster, init, a);
    } catch (err) {
      // As a rejection: the answer never comes before the attempt started.
      failLater(a, err);
    }
  }

  /** Take a retry slot if policy, budget and body allow; false otherwise. */
  private acquireRetry(): boolean {
    const { retry, body, stream } = this.p;
    if (!retry || this.retriesUsed >= this.p.numRetries) {
      if (retry) this.retriesExhausted = true;
      return false;
    }
    if (!body.replayable || stream.downstreamAborted) return false;
    if (!this.p.cluster.tryAcquireRetry()) return false;
    this.retriesUsed++;
    return true;
  }

  private scheduleRetry(): void {
    const delay = backoffMs(this.p.retry!, this.retriesUsed, this.p.random());
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = undefined;
      if (!this.done) this.startAttempt(true, true);
      else this.p.cluster.releaseRetry();
    }, delay);
  }

  /** The attempt's per-try timeout fired (onPerTryTimer). */
  onPerTryTimeout(a: Attempt): void {
    a.timer = undefined;
    if (this.done || !this.isOutstanding(a)) return;
    if (this.p.hedge?.hedgeOnPerTryTimeout) {
      // Hedge: keep this attempt running and race a new one against it.
      if (this.acquireRetry()) this.startAttempt(true, true);
      return;
    }
    this.cancel(a);
    if (this.p.retry && isRetriableFailure(this.p.retry, 'per-try-timeout') && this.acquireRetry()) {
      this.scheduleRetry();
      return;
    }
    if (this.outstandingCount === 0 && !this.backoffTimer) this.fail(new UpstreamError('UT', 'per-try timeout'));
  }

  /** The attempt's response head (Attempt.onUpstreamResponse). */
  onResponse(a: Attempt, res: UpstreamResponse): void {
    if (a.timer) clearTimeout(a.timer);
    a.timer = undefined;
    if (this.done || !this.isOutstanding(a)) {
      res.body.destroy?.();
      return;
    }
    this.removeOutstanding(a);
    this.release(a);
    const { retry, stream } = this.p;
    if (retry && isRetriableResponse(retry, res.status, res.headers, stream.grpc)) {
      // Only an attempt after this one avoids its endpoint: a response forwarded needs no list.
      this.rememberEndpoint(res.endpoint);
      if (this.outstandingCount > 0) {
        // Another (hedged) attempt is still running: let it answer instead.
        res.body.destroy?.();
        return;
      }
      if (this.acquireRetry()) {
        res.body.destroy?.();
        this.scheduleRetry();
        return;
      }
      if (this.retriesExhausted) stream.info.responseFlags.add('URX');
    }
    this.done = true;
    this.cancelOutstanding();
    this.forward(a, res);
  }

  /** The attempt failed before its response head (Attempt.onUpstreamError). */
  onError(a: Attempt, err: unknown): void {
    if (a.timer) clearTimeout(a.timer);
    a.timer = undefined;
    if (this.done || !this.isOutstanding(a)) return;
    this.removeOutstanding(a);
    this.release(a);
    const uerr = err instanceof UpstreamError ? err : new UpstreamError('UR', String(err), { cause: err });
    if (uerr.endpoint) this.rememberEndpoint(uerr.endpoint);
    if (this.outstandingCount > 0) return;
    if (this.p.retry && isRetriableFailure(this.p.retry, uerr) && this.acquireRetry()) {
      this.scheduleRetry();
      return;
    }
    if (this.backoffTimer) return;
    if (this.retriesExhausted && this.p.retry && isRetriableFailure(this.p.retry, uerr)) this.p.stream.info.responseFlags.add('URX');
    this.fail(uerr);
  }

  private fail(err: UpstreamError): void {
    if (this.done) return;
    this.done = true;
    const s = this.p.stream;
    if (err.endpoint) s.info.upstreamEndpoint = err.endpoint;
    if (err.transportFailureReason !== undefined) s.info.upstreamTransportFailureReason = err.transportFailureReason;
    if (err.responseFlag === 'UT') s.sendLocalReply(504, LocalReplyBody.upstreamTimeout, { flag: 'UT', details: 'upstream_per_try_timeout' });
    else if (err.responseFlag === 'UH') s.sendLocalReply(503, LocalReplyBody.noHealthyUpstream, { flag: 'UH', details: 'no_healthy_upstream' });
    // A malformed upstream response: Envoy's router answers 502 Bad Gateway for a ProtocolError reset.
    else if (err.responseFlag === 'UPE') s.sendLocalReply(502, LocalReplyBody.connectError(err.resetReason), { flag: 'UPE', details: 'upstream_reset_before_response_started{protocol_error}' });
    else {
      // Envoy marks requests dropped by circuit breaking with x-envoy-overloaded (unless suppressed).
      const headers = err.responseFlag === 'UO' && !this.p.suppressEnvoyHeaders ? { 'x-envoy-overloaded': 'true' } : undefined;
      s.sendLocalReply(503, LocalReplyBody.connectError(err.resetReason), { flag: err.responseFlag === 'URX' ? 'UF' : err.responseFlag, details: 'upstream_reset_before_response_started', headers });
    }
    this.end();
  }

  /** DeadlineEntry: the route timeout passed. */
  onDeadline(): void {
    this.globalTimer = undefined;
    const s = this.p.stream;
    s.info.responseFlags.add('UT');
    if (!this.done) {
      this.done = true;
      s.sendLocalReply(504, LocalReplyBody.upstreamTimeout, { flag: 'UT', details: 'upstream_response_timeout' });
      this.end();
      return;
    }
    // The response already started: Envoy resets the stream.
    this.abortAll(undefined);
  }

  private abortAll(flag: 'DC' | undefined): void {
    if (flag) this.p.stream.info.responseFlags.add(flag);
    this.cancelOutstanding();
    this.forwarding?.cancel();
    // The pump waits for events that an aborted exchange may never emit.
    this.pumpFailed();
    this.pushFailed();
    this.wake?.();
    if (!this.done) {
      this.done = true;
      this.end();
    }
  }

  private forwarding: Attempt | undefined;
  /** The winning response while its body is pumped with 'data' events (the fast path). */
  private pumping: { readonly a: Attempt; readonly res: UpstreamResponse; readonly body: Readable } | undefined;

  /** The winning attempt and response while its body pushes to this driver (BodySink: the HTTP/1.1 pool's fast path); two fields, not an object per response. */
  private pushAttempt: Attempt | undefined;
  private pushRes: UpstreamResponse | undefined;

  private forward(a: Attempt, res: UpstreamResponse): void {
    const s = this.p.stream;
    this.forwarding = a;
    s.info.upstreamEndpoint = res.endpoint;
    s.info.upstreamPeerPrincipal = res.peerPrincipal;
    s.info.responseCodeDetails = 'via_upstream';
    // The response's own map is this request's (the HTTP/1.1 parser's, kept out of its connection
    // fields): forwarded as it is unless it holds a field the downstream must not get, when the
    // copy drops those (issue 16: the copy was ~0.1 KB per request).
    const up = res.headers;
    let headers = up;
    for (const k in up) {
      if (k.charCodeAt(0) === 58 || RESPONSE_FIELDS.includes(k)) {
        headers = {};
        for (const n in up) if (n.charCodeAt(0) !== 58 && !RESPONSE_FIELDS.includes(n)) headers[n] = up[n];
        break;
      }
    }
    if (!this.p.suppressEnvoyHeaders) headers['x-envoy-upstream-service-time'] = String(Math.round(performance.now() - this.startedAt));
    if (this.p.attemptCountInResponse) headers['x-envoy-attempt-count'] = String(this.attempts);
    try {
      s.writeHeaders(res.status, headers);
    } catch {
      return this.forwardFailed(a, res);
    }
    if (s.method === 'HEAD') {
      res.body.destroy?.();
      if (a.cancelled) return this.forwardFailed(a, res);
      return this.forwardEnded(a, res, undefined);
    }
    // The HTTP/2 pool answers with a node Readable: pumping it with 'data' events (paused under
    // backpressure) costs a few listener slots, where `for await` built an async iterator, an
    // end-of-stream watcher and a promise per chunk for every request. The HTTP/1.1 pool pushes
    // (PushBody); any other AsyncIterable the contract allows is iterated.
    if (res.body instanceof Readable) {
      const body = res.body;
      this.pumping = { a, res, body };
      (body as PumpedBody)[kDriver] = this;
      body.on('data', onPumpData);
      body.on('end', onPumpEnd);
      body.on('error', onPumpStop);
      body.on('close', onPumpStop);
      return;
    }
    if (res.body.pushTo !== undefined) {
      this.pushAttempt = a;
      this.pushRes = res;
      res.body.pushTo(this);
      return;
    }
    void this.forwardIterable(a, res);
  }

  /** BodySink: a chunk of the pushed body; false pauses the body until the downstream drains. */
  onBodyData(chunk: Uint8Array): boolean {
    const a = this.pushAttempt;
    if (a === undefined) return false;
    if (a.cancelled) {
      this.pushFailed();
      return false;
    }
    let w: Promise<void> | undefined;
    try {
      w = this.p.stream.writeBody(chunk);
    } catch {
      this.pushFailed();
      return false;
    }
    if (w === undefined) return true;
    this.resumePushAfter(w, a);
    return false;
  }

  /** Resume the pushed body once the downstream drained (a method of its own: a closure in onBodyData would cost it a context per chunk). */
  private resumePushAfter(w: Promise<void>, a: Attempt): void {
    w.then(() => this.pushResume(a), () => this.pushResume(a));
  }

  private pushResume(a: Attempt): void {
    if (this.pushAttempt === a && !a.cancelled) this.pushRes!.body.resumePush?.();
  }

  /** The pushed response, no longer pushing (undefined when it was not). */
  private stopPush(): UpstreamResponse | undefined {
    const res = this.pushRes;
    this.pushAttempt = undefined;
    this.pushRes = undefined;
    return res;
  }

  /** BodySink: the pushed body ended with these trailers. */
  onBodyEnd(trailers: HeaderMap): void {
    const a = this.pushAttempt;
    const res = this.stopPush();
    if (a === undefined || res === undefined) return;
    if (a.cancelled) return this.forwardFailed(a, res);
    this.forwardEnded(a, res, trailers);
  }

  /** BodySink: the last chunk and the end at once: the response ends with the chunk. */
  onBodyLast(chunk: Uint8Array, trailers: HeaderMap): void {
    const a = this.pushAttempt;
    const res = this.stopPush();
    if (a === undefined || res === undefined) return;
    if (a.cancelled) return this.forwardFailed(a, res);
    this.forwardEnded(a, res, trailers, chunk);
  }

  /** BodySink: the pushed body failed (upstream reset, protocol error, abort). */
  onBodyError(): void {
    this.pushFailed();
  }

  private pushFailed(): void {
    const a = this.pushAttempt;
    const res = this.stopPush();
    if (a === undefined || res === undefined) return;
    this.forwardFailed(a, res);
  }

  /** A chunk of the pumped body: write it; pause the body until the downstream drains. */
  pumpData(chunk: Uint8Array): void {
    const p = this.pumping;
    if (p === undefined) return;
    if (p.a.cancelled) return this.pumpFailed();
    let w: Promise<void> | undefined;
    try {
      w = this.p.stream.writeBody(chunk);
    } catch {
      return this.pumpFailed();
    }
    if (w !== undefined) {
      p.body.pause();
      w.then(() => this.pumpResume(p), () => this.pumpResume(p));
    }
  }

  private pumpResume(p: NonNullable<Driver['pumping']>): void {
    if (this.pumping === p && !p.a.cancelled) p.body.resume();
  }

  /** The pumped body ended: wait for its trailers and finish the response. */
  pumpEnd(): void {
    const p = this.pumping;
    if (p === undefined) return;
    this.stopPump(p);
    if (p.a.cancelled) return this.forwardFailed(p.a, p.res);
    p.res.trailers.then((t) => {
      if (p.a.cancelled) return this.forwardFailed(p.a, p.res);
      this.forwardEnded(p.a, p.res, t);
    }, () => this.forwardFailed(p.a, p.res));
  }

  /** The pumped body failed, was destroyed before its end, or the exchange was aborted. */
  pumpFailed(): void {
    const p = this.pumping;
    if (p === undefined) return;
    this.stopPump(p);
    this.forwardFailed(p.a, p.res);
  }

  private stopPump(p: NonNullable<Driver['pumping']>): void {
    this.pumping = undefined;
    const b = p.body;
    b.removeListener('data', onPumpData);
    b.removeListener('end', onPumpEnd);
    b.removeListener('close', onPumpStop);
    // The 'error' listener stays: an error emitted later (a destroy below) must not be unhandled.
    (b as PumpedBody)[kDriver] = undefined;
  }

  /** Resolves the wait on a downstream drain when the exchange is aborted (set only while waiting). */
  private wake: (() => void) | undefined;

  /**
   * Any other AsyncIterable body (a pool that does not answer with a node Readable). An abort
   * ends the body through the attempt's cancel token (the pool's business) and a wait for the
   * downstream to drain through `wake`: no abort listener per request.
   */
  private async forwardIterable(a: Attempt, res: UpstreamResponse): Promise<void> {
    const s = this.p.stream;
    let trailers: HeaderMap;
    try {
      for await (const chunk of res.body) {
        if (a.cancelled) break;
        const w = s.writeBody(chunk);
        // A reset downstream never drains: the abort must also end the wait.
        if (w) {
          await Promise.race([w, new Promise<void>((r) => { this.wake = r; })]);
          this.wake = undefined;
        }
        if (a.cancelled) break;
      }
      if (a.cancelled) throw new Error('aborted');
      trailers = await res.trailers;
      if (a.cancelled) throw new Error('aborted');
    } catch {
      return this.forwardFailed(a, res);
    }
    this.forwardEnded(a, res, trailers);
  }

  private forwardEnded(a: Attempt, res: UpstreamResponse, trailers: HeaderMap | undefined, last?: Uint8Array): void {
    try {
      this.p.stream.endResponse(trailers !== undefined && hasKeys(trailers) ? trailers : undefined, last);
    } catch {
      return this.forwardFailed(a, res);
    }
    this.release(a);
    this.end();
  }

  /** Upstream reset mid-body, route timeout, or downstream gone: reset the downstream. */
  private forwardFailed(a: Attempt, res: UpstreamResponse): void {
    const s = this.p.stream;
    try {
      if (!s.downstreamAborted) s.info.responseFlags.add('UR');
      res.body.destroy?.();
      s.resetDownstream();
    } finally {
      this.release(a);
      this.end();
    }
  }
}

const kDriver = Symbol('trellis.attemptDriver');
type PumpedBody = Readable & { [kDriver]?: Driver };

// Shared listeners of a pumped response body (`this` is the body): no closures per request.
function onPumpData(this: PumpedBody, chunk: Uint8Array): void {
  this[kDriver]?.pumpData(chunk);
}
function onPumpEnd(this: PumpedBody): void {
  this[kDriver]?.pumpEnd();
}
function onPumpStop(this: PumpedBody): void {
  this[kDriver]?.pumpFailed();
}

function hasKeys(o: object): boolean {
  for (const _ in o) return true;
  return false;
}
