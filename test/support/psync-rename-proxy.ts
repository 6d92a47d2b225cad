import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * What AWS support enables on ElastiCache for a migration, as a client sees it: PSYNC answers under an
 * account-specific name and behaves as PSYNC there, while `PSYNC` itself is unknown.
 *
 * redis.conf cannot give a server that: Redis tells PSYNC from SYNC by the name the client typed
 * (`strcasecmp(argv[0], "psync")` in syncCommand), so a `rename-command PSYNC x` server answers `x ? -1`
 * as SYNC (an RDB, no +FULLRESYNC, never +CONTINUE). This proxy sits in front of a server whose PSYNC
 * keeps its name and rewrites the requests a client sends: `<renamedTo> …` becomes `PSYNC …`, `PSYNC …`
 * becomes a name the server does not know (so it answers "unknown command", in order with the other
 * replies), and the same for the command named by `ACL DRYRUN <user> <command>`. Replies pass unchanged.
 */
export interface PsyncRenameProxy {
  port: number;
  close(): Promise<void>;
}

/** What `PSYNC` by its own name is forwarded as: no server has a command of that name. */
const UNKNOWN_NAME = Buffer.from('psync-disabled-by-the-managed-profile');
const PSYNC = Buffer.from('PSYNC');

export function startPsyncRenameProxy(
  upstream: { host: string; port: number },
  renamedTo: string,
): Promise<PsyncRenameProxy> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const remote = createConnection({ host: upstream.host, port: upstream.port });
    const teardown = () => {
      sockets.delete(client);
      sockets.delete(remote);
      client.destroy();
      remote.destroy();
    };
    for (const s of [client, remote]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on('error', teardown);
      s.on('close', teardown);
    }
    remote.pipe(client);
    const rewriter = new RequestRewriter(renamedTo.toLowerCase());
    client.on('data', (chunk: Buffer) => {
      const out = rewriter.feed(chunk);
      if (out.length > 0) remote.write(out);
    });
  });
  server.unref();
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (!address || typeof address === 'string') return reject(new Error('proxy has no TCP address'));
      resolve({
        port: address.port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            for (const s of sockets) s.destroy();
          }),
      });
    });
  });
}

/** Splits the client's byte stream into requests and re-encodes only those it renames. */
class RequestRewriter {
  private pending: Buffer = Buffer.alloc(0);
  private readonly renamedTo: string;
  constructor(renamedTo: string) {
    this.renamedTo = renamedTo;
  }

  feed(chunk: Buffer): Buffer {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: Buffer[] = [];
    let pos = 0;
    for (;;) {
      const request = this.next(pos);
      if (!request) break;
      out.push(
        request.argv
          ? this.rewrite(request.argv, this.pending.subarray(pos, request.end))
          : this.pending.subarray(pos, request.end),
      );
      pos = request.end;
    }
    this.pending = Buffer.from(this.pending.subarray(pos));
    return Buffer.concat(out);
  }

  /** The request at `pos`: a RESP array (with its arguments) or an inline line; undefined if incomplete. */
  private next(pos: number): { end: number; argv?: Buffer[] } | undefined {
    const buf = this.pending;
    if (pos >= buf.length) return undefined;
    const lineEnd = buf.indexOf(10, pos);
    if (lineEnd < 0) return undefined;
    if (buf[pos] !== 0x2a /* '*' */) return { end: lineEnd + 1 };
    const count = Number(buf.toString('latin1', pos + 1, lineEnd).trim());
    const argv: Buffer[] = [];
    let at = lineEnd + 1;
    for (let i = 0; i < count; i++) {
      const headerEnd = buf.indexOf(10, at);
      if (headerEnd < 0) return undefined;
      const len = Number(buf.toString('latin1', at + 1, headerEnd).trim());
      const start = headerEnd + 1;
      if (start + len + 2 > buf.length) return undefined;
      argv.push(buf.subarray(start, start + len));
      at = start + len + 2;
    }
    return { end: at, argv };
  }

  private rewrite(argv: Buffer[], raw: Buffer): Buffer {
    const renamed = [...argv];
    renamed[0] = this.mapName(argv[0]!);
    if (argv.length >= 4 && lower(argv[0]!) === 'acl' && lower(argv[1]!) === 'dryrun') {
      renamed[3] = this.mapName(argv[3]!);
    }
    if (renamed.every((a, i) => a === argv[i])) return raw;
    return Buffer.concat([
      Buffer.from(`*${renamed.length}\r\n`),
      ...renamed.flatMap((a) => [Buffer.from(`$${a.length}\r\n`), a, Buffer.from('\r\n')]),
    ]);
  }

  private mapName(name: Buffer): Buffer {
    const n = lower(name);
    if (n === this.renamedTo) return PSYNC;
    if (n === 'psync') return UNKNOWN_NAME;
    return name;
  }
}

function lower(b: Buffer): string {
  return b.length > 32 ? '' : b.toString('latin1').toLowerCase();
}
