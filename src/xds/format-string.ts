/**
 * The grammar of Envoy's substitution format strings (access-log command operators, also used by
 * `request_headers_to_add` / `response_headers_to_add` values), shared by the control plane (an
 * analyzer holds back a VirtualService whose header value every Envoy would reject) and the proxy
 * (which evaluates them, proxy/router/header-format.ts).
 *
 * Follows Envoy 1.40 as `envoy --mode validate` reports it: `%%` is a literal `%`; any other `%`
 * must start `%NAME%`, `%NAME(ARG)%` or `%NAME(ARG):LEN%` ("Couldn't find valid command at
 * position N"); an unknown NAME is "Not supported field in StreamInfo"; parameters and lengths are
 * checked per command with Envoy's messages.
 */

/** Literal text, or one command. */
export type FormatToken = string | { readonly command: string; readonly arg: string | undefined; readonly max: number | undefined };

/** A format string Envoy would refuse; the message is Envoy's. */
export class FormatStringError extends Error {}

/** Commands the proxy evaluates. */
export const EvaluatedCommands: ReadonlySet<string> = new Set([
  'REQ', 'REQUEST_HEADER', 'RESP', 'RESPONSE_HEADER', 'PROTOCOL', 'DOWNSTREAM_REMOTE_ADDRESS', 'DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT',
  'DOWNSTREAM_REMOTE_PORT', 'DOWNSTREAM_DIRECT_REMOTE_ADDRESS', 'DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT', 'DOWNSTREAM_DIRECT_REMOTE_PORT',
  'DOWNSTREAM_LOCAL_ADDRESS', 'DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT', 'DOWNSTREAM_LOCAL_PORT', 'REQUESTED_SERVER_NAME', 'DOWNSTREAM_PEER_URI_SAN',
  'UPSTREAM_HOST', 'UPSTREAM_REMOTE_ADDRESS', 'UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT', 'UPSTREAM_REMOTE_PORT', 'UPSTREAM_CLUSTER', 'ROUTE_NAME',
  'RESPONSE_CODE', 'RESPONSE_FLAGS', 'HOSTNAME', 'ENVIRONMENT', 'START_TIME',
]);

/** Commands Envoy knows that the proxy has no data for: accepted, formatted as "". */
export const UnsupportedCommands: ReadonlySet<string> = new Set([
  'UPSTREAM_METADATA', 'DYNAMIC_METADATA', 'CLUSTER_METADATA', 'UPSTREAM_FILTER_STATE', 'FILTER_STATE', 'PER_REQUEST_STATE',
  'BYTES_RECEIVED', 'BYTES_SENT', 'DURATION', 'REQUEST_DURATION', 'RESPONSE_DURATION', 'RESPONSE_TX_DURATION', 'REQUEST_TX_DURATION',
  'UPSTREAM_TRANSPORT_FAILURE_REASON', 'UPSTREAM_LOCAL_ADDRESS', 'UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT', 'UPSTREAM_LOCAL_PORT',
  'DOWNSTREAM_TLS_VERSION', 'DOWNSTREAM_TLS_CIPHER', 'DOWNSTREAM_TLS_SESSION_ID', 'DOWNSTREAM_PEER_SUBJECT', 'DOWNSTREAM_PEER_ISSUER',
  'DOWNSTREAM_LOCAL_SUBJECT', 'DOWNSTREAM_LOCAL_URI_SAN', 'DOWNSTREAM_PEER_FINGERPRINT_256', 'DOWNSTREAM_PEER_SERIAL',
  'DOWNSTREAM_PEER_CERT', 'CONNECTION_ID', 'UPSTREAM_CONNECTION_ID', 'STREAM_ID', 'VIRTUAL_CLUSTER_NAME', 'TRAILER', 'RESPONSE_TRAILER',
  'CONNECTION_TERMINATION_DETAILS', 'UPSTREAM_REQUEST_ATTEMPT_COUNT',
  // Evaluated by access logs (proxy/access-log/log-format.ts), "" in header values:
  'RESPONSE_CODE_DETAILS', 'UPSTREAM_CLUSTER_RAW', 'TRACE_ID', 'UPSTREAM_PEER_URI_SAN',
]);

/** Take a parameter and a length; a parameter only; a parameter that is required. */
const WithLength = new Set(['REQ', 'REQUEST_HEADER', 'RESP', 'RESPONSE_HEADER', 'ENVIRONMENT']);
const ParameterOnly = new Set(['START_TIME', 'REQUESTED_SERVER_NAME']);
const ParameterRequired = new Set(['REQ', 'REQUEST_HEADER', 'RESP', 'RESPONSE_HEADER', 'ENVIRONMENT']);
const SniOptions = new Set(['SNI_ONLY', 'SNI_FIRST', 'HOST_FIRST']);
const HeaderCommands = new Set(['REQ', 'REQUEST_HEADER', 'RESP', 'RESPONSE_HEADER']);

function checkCommand(name: string, arg: string | undefined, max: number | undefined): void {
  if (!EvaluatedCommands.has(name) && !UnsupportedCommands.has(name)) throw new FormatStringError(`Not supported field in StreamInfo: ${name}`);
  if (UnsupportedCommands.has(name)) return;
  if (ParameterRequired.has(name) && (arg === undefined || arg === '')) throw new FormatStringError(`${name} requires parameters`);
  if (ParameterOnly.has(name) && max !== undefined) throw new FormatStringError(`${name} does not allow length to be specified.`);
  if (!WithLength.has(name) && !ParameterOnly.has(name) && (arg !== undefined || max !== undefined)) throw new FormatStringError(`${name} does not take any parameters or length`);
  if (HeaderCommands.has(name) && arg!.split('?').length > 2) throw new FormatStringError(`More than 1 alternative header specified in token: ${arg}`);
  if (name === 'REQUESTED_SERVER_NAME' && arg !== undefined && !SniOptions.has(arg)) {
    throw new FormatStringError(`Invalid REQUESTED_SERVER_NAME option: '${arg}', only 'SNI_ONLY'/'SNI_FIRST'/'HOST_FIRST' are allowed`);
  }
}

const CommandAt = /^%([A-Z0-9_]+)(?:\(([^)]*)\))?(?::(\d+))?%/;

/** Tokens of a format string (adjacent literal text merged); throws FormatStringError as Envoy would. */
export function parseFormatString(value: string): FormatToken[] {
  const out: FormatToken[] = [];
  let text = '';
  for (let i = 0; i < value.length;) {
    const ch = value[i];
    if (ch !== '%') {
      text += ch;
      i++;
      continue;
    }
    if (value[i + 1] === '%') {
      text += '%';
      i += 2;
      continue;
    }
    const m = CommandAt.exec(value.slice(i));
    if (m === null) throw new FormatStringError(`Incorrect configuration: ${value}. Couldn't find valid command at position ${i}`);
    const max = m[3] === undefined ? undefined : Number(m[3]);
    checkCommand(m[1], m[2], max);
    if (text !== '') out.push(text);
    text = '';
    out.push({ command: m[1], arg: m[2], max });
    i += m[0].length;
  }
  if (text !== '') out.push(text);
  return out;
}

/** `value` as a format string that yields exactly `value` (Gateway API header values are literal). */
export function escapeFormatString(value: string): string {
  return value.replaceAll('%', '%%');
}
