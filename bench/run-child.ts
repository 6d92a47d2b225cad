import { spawn } from 'node:child_process';

/** Runs a command to its end with stdout and stderr collected (the benchmarks time their children whole). */
export async function runChild(
  command: string,
  args: string[],
): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const code = await new Promise<number | null>((res) => child.once('close', res));
  return { code, out, err };
}
