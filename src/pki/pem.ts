/**
 * PEM text <-> DER bytes (RFC 7468): the one place that knows the armour. Blocks are read in order;
 * anything outside BEGIN/END lines is ignored, as OpenSSL does.
 */

/** One PEM block. */
export interface PemBlock {
  readonly label: string;
  readonly der: Buffer;
}

/** Wraps DER bytes as a PEM block with `label` (e.g. CERTIFICATE). */
export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/** Every PEM block in `text`, in order. */
export function pemBlocks(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK)) out.push({ label: m[1], der: Buffer.from(m[2].replace(/\s+/g, ''), 'base64') });
  return out;
}

/** The certificates of a PEM bundle, each as its own PEM text. */
export function splitCertificates(text: string): string[] {
  return pemBlocks(text).filter((b) => b.label === 'CERTIFICATE').map((b) => toPem('CERTIFICATE', b.der));
}
