/**
 * Helpers for the analyzer's unit tests: multi-document YAML turned into Resources without the
 * schema loader (so the tests depend only on the analyzers; no source positions, so diagnostics
 * carry no file/line), and a fixed certificate for the gateway credential checks.
 */
import { parseAllDocuments } from 'yaml';
import type { Resource } from '../resource.ts';

/** Resources from YAML text (group/Kind types, namespace defaulted to `default`). */
export function resourcesFromYaml(text: string): Resource[] {
  const out: Resource[] = [];
  for (const doc of parseAllDocuments(text)) {
    const o = doc.toJS() as Record<string, unknown> | null;
    if (o === null || typeof o !== 'object') continue;
    const apiVersion = String(o.apiVersion ?? '');
    const kind = String(o.kind ?? '');
    const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : 'core';
    const meta = (o.metadata ?? {}) as Record<string, unknown>;
    const { apiVersion: _a, kind: _k, metadata: _m, spec, ...body } = o;
    out.push({
      type: `${group}/${kind}`,
      apiVersion,
      kind,
      metadata: {
        name: String(meta.name ?? ''),
        namespace: String(meta.namespace ?? 'default'),
        labels: (meta.labels ?? {}) as Record<string, string>,
        annotations: (meta.annotations ?? {}) as Record<string, string>,
      },
      spec: spec ?? {},
      body,
    });
  }
  return out;
}

/**
 * A self-signed ECDSA certificate for `*.example.com` (valid until 2125) and its key,
 * for analyzer tests of gateway credentials; generated once with
 * `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 36500`.
 */
export const TestCertificate = `-----BEGIN CERTIFICATE-----
MIIBhzCCAS2gAwIBAgIUP/KFclw3pUDwi4Td3kIok/wQ4uowCgYIKoZIzj0EAwIw
GDEWMBQGA1UEAwwNKi5leGFtcGxlLmNvbTAgFw0yNjEyMDYxNTQ3NTNaGA8yMTI2
MTExMjE1NDc1M1owGDEWMBQGA1UEAwwNKi5leGFtcGxlLmNvbTBZMBMGByqGSM49
AgEGCCqGSM49AwEHA0IABMGhzGW9tXSV+32snhBbVODxaPGhm+nagH05VZDwJnke
EHlZxxl/Pb9idI4l3gYmYtCBlohlSYVomTwUxUitdaSjUzBRMB0GA1UdDgQWBBQG
XESQJrymE7MFsKuBvISHX/BhoTAfBgNVHSMEGDAWgBQGXESQJrymE7MFsKuBvISH
X/BhoTAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQC/DHzAF0kF
4xiwH+sdIFgG7AFIBtCSsfUjIo642IWC1wIgFaofkyTr6fZy5yLor+jaxWK7040E
jzy0F1s9AliogAE=
-----END CERTIFICATE-----
`;

export const TestPrivateKey = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgopV5k1ziPFos1KVP
A2vB5UmwdS/8Z0VtY54mQgFGYBqhRANCAATBocxlvbV0lft9rJ4QW1Tg8WjxoZvp
2oB9OVWQ8CZ5HhB5WccZfz2/YnSOJd4GJmLQgZaIZUmFaJk8FMVIrXWk
-----END PRIVATE KEY-----
`;
