/**
 * HEADER_VALUE_INVALID (error): a VirtualService header operation value (`headers.request/response
 * set/add`, on a route or on one of its destinations) that Envoy parses as a format string and
 * rejects ("50%", "%NOPE%", "%REQ()%"...). Istio passes these values to Envoy verbatim, so `%` starts
 * a command (%DOWNSTREAM_REMOTE_ADDRESS%, %REQ(x-user)%) and a literal percent is written `%%`.
 * Without this check every proxy would NACK the route configuration; with it the resource keeps its
 * last good version and the message says why, in Envoy's words.
 */
import { ResourceTypes } from '../resource.ts';
import { FormatStringError, parseFormatString } from '../../xds/format-string.ts';
import type { AnalysisContext } from './context.ts';
import { list, view } from '../views.ts';

interface HeaderOps {
  readonly set?: Record<string, unknown>;
  readonly add?: Record<string, unknown>;
}

interface HeadersView {
  readonly request?: HeaderOps;
  readonly response?: HeaderOps;
}

interface HttpRouteView {
  readonly headers?: HeadersView;
  readonly route?: readonly ({ readonly headers?: HeadersView } | undefined)[];
}

/** Runs the header value check over every VirtualService. */
export function checkHeaderValues(ctx: AnalysisContext): void {
  for (const vs of ctx.of(ResourceTypes.VirtualService)) {
    const http = list(view<{ http?: readonly HttpRouteView[] }>(vs).http);
    const check = (headers: HeadersView | undefined, at: string): void => {
      for (const dir of ['request', 'response'] as const) {
        for (const op of ['set', 'add'] as const) {
          for (const [name, value] of Object.entries(headers?.[dir]?.[op] ?? {})) {
            if (typeof value !== 'string' || !value.includes('%')) continue;
            try {
              parseFormatString(value);
            } catch (err) {
              if (!(err instanceof FormatStringError)) throw err;
              ctx.report(vs, 'error', 'HEADER_VALUE_INVALID',
                `header '${name}' value '${value}' is not a valid Envoy format string: ${err.message} (write a literal % as %%)`, `${at}.headers.${dir}.${op}.${name}`);
            }
          }
        }
      }
    };
    http.forEach((h, i) => {
      check(h?.headers, `spec.http[${i}]`);
      list(h?.route).forEach((d, j) => check(d?.headers, `spec.http[${i}].route[${j}]`));
    });
  }
}
