import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { compileHeaderFormat, formatHeader, type FormatContext, type FormatInfo } from './header-format.ts';
import { FormatStringError } from '../../xds/format-string.ts';
import { applyHeaderMutation, compileHeaderMutation } from './header-mutation.ts';
import type { HeaderMap } from '../upstream/types.ts';

const info: FormatInfo = {
  startTime: Date.UTC(2026, 11, 5, 13, 4, 5, 678), protocol: 'HTTP/1.1',
  downstreamRemoteAddress: '10.1.2.3', downstreamDirectRemoteAddress: '10.1.2.3', downstreamDirectRemotePort: 40123,
  downstreamLocalAddress: '127.0.0.1', downstreamLocalPort: 8080, downstreamTls: undefined,
  routeName: 'r1', clusterName: 'outbound|80||a.default.svc.cluster.local', upstreamEndpoint: '127.0.0.1:9000', responseCode: 0, responseFlags: new Set(),
};

function ctx(requestHeaders: HeaderMap = {}, more: Partial<FormatContext> = {}): FormatContext {
  return { info, method: 'GET', path: '/p?q=1', authority: 'a.example', scheme: 'http', requestHeaders, ...more };
}

const fmt = (value: string, c: FormatContext = ctx()) => formatHeader(compileHeaderFormat(value), c);

test('constants stay strings; %% is a literal percent', () => {
  assert.equal(compileHeaderFormat('plain'), 'plain');
  assert.equal(compileHeaderFormat('a%%b'), 'a%b');
});

test('malformed or unknown commands are refused with Envoy\'s messages (checked with envoy --mode validate)', () => {
  const refuses = (value: string, message: string) => assert.throws(() => compileHeaderFormat(value), (e: Error) => e instanceof FormatStringError && e.message === message, value);
  refuses('50%', 'Incorrect configuration: 50%. Couldn\'t find valid command at position 2');
  refuses('a%b', 'Incorrect configuration: a%b. Couldn\'t find valid command at position 1');
  refuses('%', 'Incorrect configuration: %. Couldn\'t find valid command at position 0');
  refuses('%FOO%', 'Not supported field in StreamInfo: FOO');
  refuses('%REQ()%', 'REQ requires parameters');
  refuses('%REQ(a?b?c)%', 'More than 1 alternative header specified in token: a?b?c');
  refuses('%HOSTNAME:3%', 'HOSTNAME does not take any parameters or length');
  refuses('%PROTOCOL(x)%', 'PROTOCOL does not take any parameters or length');
  refuses('%START_TIME:3%', 'START_TIME does not allow length to be specified.');
  refuses('%ENVIRONMENT()%', 'ENVIRONMENT requires parameters');
  refuses('%REQUESTED_SERVER_NAME(x)%', 'Invalid REQUESTED_SERVER_NAME option: \'x\', only \'SNI_ONLY\'/\'SNI_FIRST\'/\'HOST_FIRST\' are allowed');
  assert.equal(fmt('%REQ(x-none?)%'), '', 'an empty alternative is no alternative');
  assert.equal(fmt('%UPSTREAM_METADATA(["a","b"])%'), '', 'known to Envoy, no data here');
});

test('request headers, alternatives, pseudo-headers, truncation; a missing header formats as nothing', () => {
  const c = ctx({ 'x-user': 'alice', 'x-multi': ['one', 'two'] });
  assert.equal(fmt('%REQ(X-User)%', c), 'alice');
  assert.equal(fmt('%REQ(x-none?x-user)%', c), 'alice');
  assert.equal(fmt('%REQ(x-multi)%', c), 'one');
  assert.equal(fmt('%REQ(x-user):3%', c), 'ali');
  assert.equal(fmt('[%REQ(x-none)%]', c), '[]');
  assert.equal(fmt('%REQ(:METHOD)% %REQ(:PATH)% %REQ(:AUTHORITY)%', c), 'GET /p?q=1 a.example');
  assert.equal(fmt('%RESP(x-r)%', c), '', 'no response while formatting a request');
  assert.equal(fmt('%RESP(x-r)%', ctx({}, { responseHeaders: { 'x-r': 'yes' } })), 'yes');
});

test('addresses with and without ports; an address taken from x-forwarded-for has port 0; IPv6 in brackets', () => {
  assert.equal(fmt('%DOWNSTREAM_REMOTE_ADDRESS%'), '10.1.2.3:40123');
  assert.equal(fmt('%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%:%DOWNSTREAM_REMOTE_PORT%'), '10.1.2.3:40123');
  assert.equal(fmt('%DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_PORT%'), '127.0.0.1:8080 8080');
  const xff = ctx({}, { info: { ...info, downstreamRemoteAddress: '203.0.113.9' } });
  assert.equal(fmt('%DOWNSTREAM_REMOTE_ADDRESS%', xff), '203.0.113.9:0');
  assert.equal(fmt('%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%', xff), '10.1.2.3:40123');
  const v6 = ctx({}, { info: { ...info, downstreamRemoteAddress: '::1', downstreamDirectRemoteAddress: '::1' } });
  assert.equal(fmt('%DOWNSTREAM_REMOTE_ADDRESS%', v6), '[::1]:40123');
});

test('stream facts, time formats, host name and environment', () => {
  assert.equal(fmt('%PROTOCOL% %ROUTE_NAME% %UPSTREAM_CLUSTER% %UPSTREAM_HOST%'), 'HTTP/1.1 r1 outbound|80||a.default.svc.cluster.local 127.0.0.1:9000');
  assert.equal(fmt('%START_TIME%'), '2026-12-05T13:04:05.678Z');
  assert.equal(fmt('%START_TIME(%s)%'), String(Math.floor(info.startTime / 1000)));
  assert.equal(fmt('%START_TIME(%Y/%m/%d %H:%M:%S.%3f)%'), '2026/12/05 13:04:05.678');
  assert.equal(fmt('%HOSTNAME%'), hostname());
  process.env.TRELLIS_FMT_TEST = 'v';
  assert.equal(fmt('%ENVIRONMENT(TRELLIS_FMT_TEST)%'), 'v');
  assert.equal(fmt('%RESPONSE_FLAGS%'), '-');
});

test('a level formats every value against the headers before its own additions; an empty result is not added unless kept', () => {
  const m = compileHeaderMutation({
    request_headers_to_remove: ['x-gone'],
    request_headers_to_add: [
      { header: { key: 'x-a', value: 'from-a' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
      { header: { key: 'x-copy', value: '%REQ(x-a)%|%REQ(x-gone)%' } },
      { header: { key: 'x-empty', value: '%REQ(x-none)%' } },
      { header: { key: 'x-kept', value: '%REQ(x-none)%' }, keep_empty_value: true },
    ],
  }, 'request', 'route');
  const headers: HeaderMap = { 'x-a': 'before', 'x-gone': 'removed first' };
  applyHeaderMutation(headers, m, ctx(headers));
  assert.deepEqual(headers, { 'x-a': 'from-a', 'x-copy': 'before|', 'x-kept': '' });
});

test('a bad format or append with append_action names the field', () => {
  assert.throws(() => compileHeaderMutation({ response_headers_to_add: [{ header: { key: 'x', value: '%NOPE%' } }] }, 'response', 'vh'),
    (e: Error) => /vh\.response_headers_to_add\[0\]\.header\.value/.test(e.message) && /Not supported field in StreamInfo: NOPE/.test(e.message));
  assert.throws(() => compileHeaderMutation({ request_headers_to_add: [{ header: { key: 'x', value: 'v' }, append: true, append_action: 'ADD_IF_ABSENT' }] }, 'request', 'r'),
    /Both append and append_action are set/);
});
