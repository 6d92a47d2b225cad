import type { AttributeValue } from '@aws-sdk/client-dynamodb';

/**
 * Plain JSON-like values <-> DynamoDB attribute values. Hand-written because @aws-sdk/util-dynamodb is not a
 * dependency; the store only ever writes strings, numbers, booleans, null, lists and maps.
 * Properties whose value is undefined are left out, like JSON.stringify does.
 */

export function marshalItem(value: Record<string, unknown>): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v !== undefined) out[k] = marshalValue(v, k);
  }
  return out;
}

export function unmarshalItem(item: Record<string, AttributeValue>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(item)) out[k] = unmarshalValue(v, k);
  return out;
}

function marshalValue(v: unknown, path: string): AttributeValue {
  if (v === null) return { NULL: true };
  switch (typeof v) {
    case 'string':
      return { S: v };
    case 'boolean':
      return { BOOL: v };
    case 'number':
      if (!Number.isFinite(v)) throw new Error(`cannot store non-finite number at ${path}: ${v}`);
      return { N: String(v) };
    case 'object':
      if (Array.isArray(v))
        return { L: v.map((e, i) => marshalValue(e === undefined ? null : e, `${path}[${i}]`)) };
      if (!isPlainObject(v))
        throw new Error(`cannot store a ${v.constructor?.name ?? 'non-plain'} object at ${path}`);
      return { M: marshalMap(v as Record<string, unknown>, path) };
    default:
      throw new Error(`cannot store a ${typeof v} at ${path}`);
  }
}

function marshalMap(obj: Record<string, unknown>, path: string): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (v !== undefined) out[k] = marshalValue(v, `${path}.${k}`);
  }
  return out;
}

function unmarshalValue(v: AttributeValue, path: string): unknown {
  if (v.S !== undefined) return v.S;
  if (v.N !== undefined) return Number(v.N);
  if (v.BOOL !== undefined) return v.BOOL;
  if (v.NULL !== undefined) return null;
  if (v.L !== undefined) return v.L.map((e, i) => unmarshalValue(e, `${path}[${i}]`));
  if (v.M !== undefined) {
    const out: Record<string, unknown> = {};
    for (const [k, e] of Object.entries(v.M)) out[k] = unmarshalValue(e, `${path}.${k}`);
    return out;
  }
  throw new Error(`unsupported DynamoDB attribute type at ${path}: ${Object.keys(v).join(',')}`);
}

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}
