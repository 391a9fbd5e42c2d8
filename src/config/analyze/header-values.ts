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
import { list, view, type RouteHeaders, type VirtualServiceView } from '../views.ts';

/** Runs the header value check over every VirtualService. */
export function checkHeaderValues(ctx: AnalysisContext): void {
  for (const vs of ctx.of(ResourceTypes.VirtualService)) {
    const http = list(view<VirtualServiceView>(vs).http);
    const check = (headers: RouteHeaders | undefined, at: string): void => {
      for (const dir of ['request', 'response'] as const) {
        for (const op of ['set', 'add'] as const) {
          // Values are read as unknown: a loader gap must not crash analysis.
          for (const [name, value] of Object.entries<unknown>(headers?.[dir]?.[op] ?? {})) {
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
