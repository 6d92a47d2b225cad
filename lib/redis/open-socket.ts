import net from 'node:net';
import tls from 'node:tls';
import { classifyRedisError } from './classify-error.ts';
import type { RedisEndpoint } from './endpoint.ts';

/**
 * Opens a plain or TLS socket to the endpoint, for the data-plane connection and the replication
 * link (which reads raw bytes: RDB, then the command stream), neither of which goes through ioredis.
 */
export function openSocket(ep: RedisEndpoint, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = ep.tls
      ? tls.connect({
          host: ep.host,
          port: ep.port,
          ca: ep.tls.ca,
          rejectUnauthorized: !ep.tls.insecure,
          servername: ep.tls.servername ?? (net.isIP(ep.host) ? undefined : ep.host),
        })
      : net.connect({ host: ep.host, port: ep.port });
    const timer = setTimeout(() => {
      const err = Object.assign(new Error('connect timeout'), {
        code: 'ETIMEDOUT',
        // TCP up but no TLS answer is a different mistake (TLS against a plain port) from no TCP at all.
        timeoutPhase: ep.tls && !socket.connecting ? 'tls' : 'tcp',
        timeoutMs,
      });
      socket.destroy();
      reject(classifyRedisError(err, ep, 'connecting'));
    }, timeoutMs);
    socket.once(ep.tls ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (e) => {
      clearTimeout(timer);
      socket.destroy();
      reject(classifyRedisError(e, ep, 'connecting'));
    });
  });
}
