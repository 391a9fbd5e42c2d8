import assert from 'node:assert/strict';
import { test } from 'node:test';
import { writeHead } from './h1-head.ts';
import type { HeaderMap } from './types.ts';

/** The head as the string the client wrote before (one line per value, hop-by-hop fields left out). */
function expected(method: string, path: string, authority: string, keepAlive: boolean, headers: HeaderMap, tail: string): string {
  let lines = '';
  for (const [name, v] of Object.entries(headers)) {
    if (['host', 'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'expect', 'content-length'].includes(name)) continue;
    for (const one of typeof v === 'string' ? [v] : v) lines += `${name}: ${one}\r\n`;
  }
  return `${method} ${path} HTTP/1.1\r\nhost: ${authority}\r\nconnection: ${keepAlive ? 'keep-alive' : 'close'}\r\n${lines}${tail}`;
}

test('request head: the bytes of the string head, hop-by-hop fields left out, a list as several lines, latin1 kept', () => {
  const headers: HeaderMap = { 'x-a': '1', connection: 'x-a', 'x-list': ['a', 'b'], 'content-length': '3', 'x-latin1': 'caf\u00e9', 'x-empty': '', te: 'trailers' };
  for (const keepAlive of [true, false]) {
    const head = writeHead('POST', '/p?q=\u00ff', 'backend.test:8080', keepAlive, headers, 'content-length: 3\r\n\r\n');
    assert.equal(head.toString('latin1'), expected('POST', '/p?q=\u00ff', 'backend.test:8080', keepAlive, headers, 'content-length: 3\r\n\r\n'));
  }
});

test('request head: heads never share bytes across slabs; a large head gets a buffer of its own', () => {
  const heads: [Buffer, string][] = [];
  for (let i = 0; i < 2000; i++) {
    const headers: HeaderMap = { 'x-i': String(i), 'x-pad': 'p'.repeat(i % 200) };
    heads.push([writeHead('GET', `/r${i}`, 'h', true, headers, '\r\n'), expected('GET', `/r${i}`, 'h', true, headers, '\r\n')]);
  }
  const big: HeaderMap = { 'x-big': 'b'.repeat(20_000) };
  heads.push([writeHead('GET', '/big', 'h', true, big, '\r\n'), expected('GET', '/big', 'h', true, big, '\r\n')]);
  for (const [buf, want] of heads) assert.equal(buf.toString('latin1'), want);
});
