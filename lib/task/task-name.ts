import { createHash } from 'node:crypto';
import { parseRedisUrl } from '../redis/url.ts';

/**
 * What naming needs of an endpoint of the spec (spec.ts's EndpointSpecInput has this shape): its URL, or
 * its host and port. Declared here, not imported, so the spec module can re-export these helpers
 * without the two importing each other.
 */
export type EndpointSpecInput = { url: string } | { host: string; port?: number | undefined };

const DEFAULT_PORT = 6379;
const MAX_TASK_ID = 64;

interface Ends {
  source: EndpointSpecInput;
  target: EndpointSpecInput;
}

/** `src-host:6379 → dst-host:6380 2026-11-25` (UTC date): what a person recognizes in a task list. */
export function generateTaskName(spec: Ends, now: Date = new Date()): string {
  const label = (ep: EndpointSpecInput) => {
    const { host, port } = hostPort(ep);
    return `${host.includes(':') ? `[${host}]` : host}:${port}`;
  };
  return `${label(spec.source)} → ${label(spec.target)} ${now.toISOString().slice(0, 10)}`;
}

/**
 * `<srcHost>-<srcPort>-to-<dstHost>-<dstPort>` in the taskId alphabet, so running the same pair again
 * resumes the same task. Ids longer than 64 characters keep a hash of the whole, so they stay distinct.
 */
export function defaultTaskId(spec: Ends): string {
  const src = hostPort(spec.source);
  const dst = hostPort(spec.target);
  const id = `${src.host}-${src.port}-to-${dst.host}-${dst.port}`.replace(/[^A-Za-z0-9_.-]/g, '-');
  if (id.length <= MAX_TASK_ID) return id;
  const hash = createHash('sha256').update(id).digest('hex').slice(0, 8);
  return `${id.slice(0, MAX_TASK_ID - hash.length - 1)}-${hash}`;
}

function hostPort(ep: EndpointSpecInput): { host: string; port: number } {
  if ('url' in ep) {
    // A stand-in password: only the host and port are wanted, and the URL may name a user alone.
    const parsed = parseRedisUrl(ep.url, 'source', { password: 'x' });
    return { host: parsed.host, port: parsed.port };
  }
  return { host: ep.host, port: ep.port ?? DEFAULT_PORT };
}
