import { isDtsError } from '../errors.ts';
import { HELP, VERSION } from './help.ts';
import { precheckCommand } from './precheck-command.ts';
import { startCommand } from './start-command.ts';
import { listCommand, statusCommand, stopCommand } from './status-command.ts';
import { syncCommand } from './sync-command.ts';
import { UsageError } from './usage-error.ts';
import { verifyCommand } from './verify-command.ts';

/** Exit codes: 0 done, 1 the task failed (cause and fix printed), 2 bad usage, 130 stopped by a signal. */
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
      case 'sync':
        return await syncCommand(rest);
      case 'precheck':
        return await precheckCommand(rest);
      case 'verify':
        return await verifyCommand(rest);
      case 'start':
        return await startCommand(rest);
      case 'status':
        return await statusCommand(rest);
      case 'list':
        return await listCommand(rest);
      case 'stop':
        return await stopCommand(rest);
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
