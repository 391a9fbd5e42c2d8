/**
 * The admission webhook server: `AdmissionReview` v1 over HTTPS (the API server refuses plain
 * HTTP), one handler per path (`/inject`, `/validate`). It parses and checks the review at the
 * edge, answers with the request's `uid` as the API requires, and turns a handler error into a
 * refusal with a message rather than a hung API call. Its certificate can be replaced while it
 * runs (`setCertificate`), which is how the serving certificate is rotated.
 */
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describeError } from '../../errors.ts';

/** The `request` of an AdmissionReview v1 (the parts handlers read). */
export interface AdmissionRequest {
  readonly uid: string;
  readonly kind: { readonly group: string; readonly version: string; readonly kind: string };
  readonly resource?: { readonly group: string; readonly version: string; readonly resource: string };
  readonly subResource?: string;
  readonly name?: string;
  readonly namespace?: string;
  readonly operation: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  readonly object?: Record<string, unknown>;
  readonly oldObject?: Record<string, unknown>;
  readonly dryRun?: boolean;
  readonly userInfo?: { readonly username?: string };
}

/** What a handler answers. */
export interface AdmissionVerdict {
  readonly allowed: boolean;
  /** Shown to the user on refusal (`kubectl apply` prints it). */
  readonly message?: string;
  /** HTTP-style code for a refusal (default 400). */
  readonly code?: number;
  /** RFC 6902 operations to apply to the object (mutating webhooks only). */
  readonly patch?: readonly JsonPatchOp[];
  /** Shown by kubectl as `Warning: ...` even when allowed. */
  readonly warnings?: readonly string[];
}

/** One JSON Patch operation. */
export interface JsonPatchOp {
  readonly op: 'add' | 'replace' | 'remove';
  readonly path: string;
  readonly value?: unknown;
}

export type AdmissionHandler = (req: AdmissionRequest) => AdmissionVerdict | Promise<AdmissionVerdict>;

/** The AdmissionReview v1 response body for a verdict. */
export function reviewResponse(uid: string, v: AdmissionVerdict): Record<string, unknown> {
  const response: Record<string, unknown> = { uid, allowed: v.allowed };
  if (!v.allowed) response.status = { code: v.code ?? 400, message: v.message ?? 'denied', reason: 'BadRequest' };
  if (v.patch !== undefined && v.patch.length > 0) {
    response.patchType = 'JSONPatch';
    response.patch = Buffer.from(JSON.stringify(v.patch)).toString('base64');
  }
  if (v.warnings !== undefined && v.warnings.length > 0) response.warnings = v.warnings;
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}

/** Parses a review body; throws a message for anything that is not an AdmissionReview v1 request. */
export function parseReview(body: string): AdmissionRequest {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    throw new Error('body is not JSON');
  }
  const r = v as { apiVersion?: unknown; kind?: unknown; request?: AdmissionRequest };
  if (r?.kind !== 'AdmissionReview' || r.apiVersion !== 'admission.k8s.io/v1') throw new Error('expected an admission.k8s.io/v1 AdmissionReview');
  const req = r.request;
  if (typeof req?.uid !== 'string' || req.uid === '' || typeof req.kind?.kind !== 'string') throw new Error('AdmissionReview has no request.uid or request.kind');
  return req;
}

/** A running webhook server. */
export interface WebhookServer {
  readonly port: number;
  /** Serves with a new certificate from the next connection on. */
  setCertificate(certPem: string, keyPem: string): void;
  close(): Promise<void>;
}

const MAX_BODY = 8 << 20;

/** Starts the HTTPS server; `handlers` by path (`/inject`, `/validate`). */
export async function startWebhookServer(opts: {
  host?: string;
  port: number;
  certPem: string;
  keyPem: string;
  handlers: Readonly<Record<string, AdmissionHandler>>;
  log?: (level: 'info' | 'warn', obj: Record<string, unknown>, msg: string) => void;
}): Promise<WebhookServer> {
  const server: Server = createServer({ cert: opts.certPem, key: opts.keyPem, minVersion: 'TLSv1.2' }, (req, res) => void handle(req, res));
  const send = (res: ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/ready') return send(res, 200, { ready: true });
    const handler = opts.handlers[path];
    if (handler === undefined) return send(res, 404, { error: `no webhook at ${path}` });
    if (req.method !== 'POST') return send(res, 405, { error: 'POST an AdmissionReview' });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > MAX_BODY) return send(res, 413, { error: 'AdmissionReview too large' });
      chunks.push(c as Buffer);
    }
    let review: AdmissionRequest;
    try {
      review = parseReview(Buffer.concat(chunks).toString('utf8'));
    } catch (err) {
      return send(res, 400, { error: (err as Error).message });
    }
    let verdict: AdmissionVerdict;
    try {
      verdict = await handler(review);
    } catch (err) {
      opts.log?.('warn', { path, uid: review.uid, error: describeError(err) }, 'admission handler failed');
      verdict = { allowed: false, code: 500, message: `trellis ${path}: ${describeError(err)}` };
    }
    send(res, 200, reviewResponse(review.uid, verdict));
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    setCertificate(certPem, keyPem) {
      server.setSecureContext({ cert: certPem, key: keyPem, minVersion: 'TLSv1.2' });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
