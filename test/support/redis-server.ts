import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** A real redis-server on a free loopback port, with a throwaway working directory. */
export interface RedisProcess {
  host: string;
  port: number;
  /** redis://127.0.0.1:PORT (with the password when one was configured). */
  url: string;
  dir: string;
  /** Runs redis-cli against this server and returns its stdout (trimmed). */
  cli(...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

export interface StartRedisOptions {
  /** Extra command-line config, e.g. ['--requirepass', 'pw'] or ['--maxmemory', '1mb']. */
  args?: string[];
  /** Password the helper's own cli() and url use (set it when args include --requirepass). */
  password?: string;
}

const running = new Set<RedisProcess>();

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Starts redis-server with no persistence and DEBUG enabled (tests compare with DEBUG DIGEST).
 * Retries on a port race; resolves once the server answers PING.
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisProcess> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'redis-dts-test-'));
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--enable-debug-command',
        'yes',
        // Native replication is the tests' and benchmarks' reference copy: don't wait 5 s to start it.
        '--repl-diskless-sync-delay',
        '0',
        '--dir',
        dir,
        '--logfile',
        join(dir, 'redis.log'),
        ...(options.args ?? []),
      ],
      { stdio: 'ignore' },
    );
    const proc = makeProcess(child, port, dir, options.password);
    try {
      await waitReady(proc, child);
      running.add(proc);
      return proc;
    } catch (e) {
      await proc.stop();
      if (attempt >= 3) throw e;
    }
  }
}

function makeProcess(child: ChildProcess, port: number, dir: string, password?: string): RedisProcess {
  const auth = password ? [`-a`, password, '--no-auth-warning'] : [];
  let stopped: Promise<void> | undefined;
  const proc: RedisProcess = {
    host: '127.0.0.1',
    port,
    dir,
    url: password
      ? `redis://:${encodeURIComponent(password)}@127.0.0.1:${port}`
      : `redis://127.0.0.1:${port}`,
    async cli(...args: string[]) {
      const { stdout } = await execFileAsync(
        'redis-cli',
        ['-h', '127.0.0.1', '-p', String(port), ...auth, ...args],
        {
          maxBuffer: 64 * 1024 * 1024,
        },
      );
      return stdout.trim();
    },
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        running.delete(proc);
        if (child.exitCode !== null || child.signalCode !== null) return done();
        child.once('exit', done);
        child.kill('SIGKILL');
        function done() {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        }
      });
      return stopped;
    },
  };
  return proc;
}

async function waitReady(proc: RedisProcess, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`redis-server on port ${proc.port} exited (${child.exitCode})`);
    try {
      if ((await proc.cli('PING')) === 'PONG') return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`redis-server on port ${proc.port} did not answer PING within 10 s`);
}

/** Stops every server this process started: call from afterAll, and it also runs on exit. */
export async function stopAllRedis(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
}

process.once('exit', () => {
  for (const p of running) {
    void p.stop();
    rmSync(p.dir, { recursive: true, force: true });
  }
});
