import { createConnection, createServer, type Socket } from 'node:net';

/** A loopback TCP proxy a test can use to cut connections (e.g. a replication link) mid-stream. */
export interface TcpProxy {
  port: number;
  /** redis://127.0.0.1:PORT, with the password when given. */
  url(password?: string): string;
  /** Destroys every open client<->upstream pair now; keeps listening so clients can reconnect. */
  dropAll(): void;
  /** Client connections accepted so far. */
  readonly connections: number;
  /** Stops listening and destroys every open pair. */
  close(): Promise<void>;
}

export function startTcpProxy(upstream: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>();
  let accepted = 0;

  const server = createServer((client) => {
    accepted++;
    const remote = createConnection({ host: upstream.host, port: upstream.port });
    const pair: [Socket, Socket] = [client, remote];
    pairs.add(pair);
    // Either side ending or failing ends both, as a real network cut would for the survivor.
    const teardown = () => {
      pairs.delete(pair);
      client.destroy();
      remote.destroy();
    };
    for (const s of pair) {
      s.setNoDelay(true);
      s.on('error', teardown);
      s.on('close', teardown);
    }
    client.pipe(remote);
    remote.pipe(client);
  });

  const dropAll = () => {
    for (const [client, remote] of [...pairs]) {
      client.destroy();
      remote.destroy();
    }
    pairs.clear();
  };

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      const address = server.address();
      if (!address || typeof address === 'string') {
        reject(new Error('proxy has no TCP address'));
        return;
      }
      const port = address.port;
      resolve({
        port,
        url: (password) =>
          password
            ? `redis://:${encodeURIComponent(password)}@127.0.0.1:${port}`
            : `redis://127.0.0.1:${port}`,
        dropAll,
        get connections() {
          return accepted;
        },
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            dropAll();
          }),
      });
    });
  });
}
