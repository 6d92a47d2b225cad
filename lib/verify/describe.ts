import { printableKey } from '../fullsync/copy-key-in-parts.ts';

const SHOWN_BYTES = 40;

/** An element or value for a one-line detail: quoted, escaped, cut after 40 bytes. */
export function shown(value: Buffer | string | null | undefined): string {
  if (value === null || value === undefined) return '(none)';
  const b = Buffer.isBuffer(value) ? value : Buffer.from(value);
  if (b.length <= SHOWN_BYTES) return printableKey(b);
  return `${printableKey(b.subarray(0, SHOWN_BYTES))}… (${b.length} bytes)`;
}

/** `db0 "key"`, or `db0→db2 "key"` when the destination db differs. */
export function keyLabel(sourceDb: number, targetDb: number, key: Buffer): string {
  const db = sourceDb === targetDb ? `db${sourceDb}` : `db${sourceDb}→db${targetDb}`;
  return `${db} ${printableKey(key)}`;
}

export function expiryText(ms: number): string {
  if (ms === -1) return 'no expiry';
  if (ms === -2) return '(key missing)';
  return `expires at ${new Date(ms).toISOString()}`;
}

/** Either side's text, for a sentence like `3 on the source, 4 on the target`. */
export function sides(source: string | number, target: string | number): string {
  return `${source} on the source, ${target} on the target`;
}
