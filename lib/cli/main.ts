import { flushCompileCache } from 'node:module';
import { isDtsError } from '../errors.ts';
import { HELP, VERSION } from './help.ts';
import { UsageError } from './usage-error.ts';

/** Exit codes: 0 done, 1 the task failed (cause and fix printed), 2 bad usage, 130 stopped by a signal. */
/**
 * Each command's module is loaded when it runs: `sync` then carries neither the Step Functions client
 * of `start` nor the others (tens of MB of RSS, and start-up time).
 */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(rest[0] && HELP[rest[0]] ? HELP[rest[0]]! : HELP.main!);
        return 0;
      case '--version':
      case 'version':
        process.stdout.write(`redis-dts ${VERSION}\n`);
        return 0;
      case 'sync': {
        const { syncCommand } = await import('./sync-command.ts');
        // Node writes its compile cache at exit; a sync may run for weeks and end with SIGKILL, so write
        // it now that every module is loaded (see sync-process.ts: the next run skips type stripping).
        flushCompileCache();
        return await syncCommand(rest);
      }
      case 'precheck':
        return await (await import('./precheck-command.ts')).precheckCommand(rest);
      case 'verify':
        return await (await import('./verify-command.ts')).verifyCommand(rest);
      case 'start':
        return await (await import('./start-command.ts')).startCommand(rest);
      case 'status':
        return await (await import('./status-command.ts')).statusCommand(rest);
      case 'list':
        return await (await import('./status-command.ts')).listCommand(rest);
      case 'stop':
        return await (await import('./status-command.ts')).stopCommand(rest);
      case 'cutover':
        return await (await import('./cutover-command.ts')).cutoverCommand(rest);
      default:
        throw new UsageError(`unknown command '${command}'`, 'main');
    }
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(
        `error: ${e.message}\nfix: see 'redis-dts ${e.command === 'main' ? '' : `${e.command} `}--help'\n`,
      );
      return 2;
    }
    if (isDtsError(e)) {
      process.stderr.write(`error: ${e.message}\nfix: ${e.fix}\n`);
      return 1;
    }
    process.stderr.write(
      `error: unexpected failure (a bug in redis-dts): ${(e as Error)?.stack ?? String(e)}\n`,
    );
    return 1;
  }
}
