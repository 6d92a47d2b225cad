import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
  /**
   * The server binary: a path (e.g. one of ../shared/redis-servers/, see server-builds.ts) or a name on
   * the PATH. Default: the system `redis-server`.
   */
  binary?: string;
  /**
   * redis.conf lines, written to a file the server starts from (directives such as `rename-command`
   * that a managed service's profile needs; see managed-redis.ts).
   */
  configLines?: string[];
  /**
   * The name DEBUG answers to on this server when the config renames it: the test comparison
   * (compare.ts) then takes DEBUG DIGEST under that name.
   */
  debugCommand?: string;
}

const running = new Set<RedisProcess>();
/** Port -> the name DEBUG was renamed to, for servers started with a managed profile. */
const debugCommands = new Map<number, string>();
const majors = new Map<string, number>();

/** The major version of a server binary (from `--version`), read once per binary. */
export function serverMajor(binary = 'redis-server'): number {
  let major = majors.get(binary);
  if (major === undefined) {
    const out = execFileSync(binary, ['--version'], { encoding: 'utf8' });
    const m = / v=(\d+)\./.exec(out);
    if (!m) throw new Error(`cannot read the version of ${binary} from: ${out.trim()}`);
    major = Number(m[1]);
    majors.set(binary, major);
  }
  return major;
}

/**
 * The name to call DEBUG by on the server at this URL: `DEBUG`, or the test-only name its managed
 * profile gave it (managed services refuse DEBUG; the tests still need DEBUG DIGEST).
 */
export function debugCommandFor(url: string): string {
  const port = Number(new URL(url).port);
  return debugCommands.get(port) ?? 'DEBUG';
}

/** Makes DEBUG DIGEST of the server at `port` (a proxy in front of a server, say) go by `name`. */
export function registerDebugCommand(port: number, name: string | undefined): void {
  if (name === undefined) debugCommands.delete(port);
  else debugCommands.set(port, name);
}

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
    const binary = options.binary ?? 'redis-server';
    const configFile: string[] = [];
    if (options.configLines) {
      configFile.push(join(dir, 'redis.conf'));
      writeFileSync(configFile[0]!, `${options.configLines.join('\n')}\n`);
    }
    const child = spawn(
      binary,
      [
        ...configFile,
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        // Before 7.0 DEBUG is always on and the option does not exist.
        ...(serverMajor(binary) >= 7 ? ['--enable-debug-command', 'yes'] : []),
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
      if (options.debugCommand) debugCommands.set(proc.port, options.debugCommand);
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
        debugCommands.delete(port);
        if (child.exitCode !== null || child.signalCode !== null) return done();
        child.once('exit', done);
        child.kill('SIGKILL');
        function done() {
          // A fork of the killed server (an RDB for a replica) can still be writing into the dir: rmSync then
          // fails with ENOTEMPTY, which thrown here would leave stop() pending forever. Retried, and never
          // in the way of resolving.
          try {
            rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
          } catch {
            // The leftover is a temp dir of the OS.
          }
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
