import { asciiLower } from '../commands/catalogue.ts';
import { keySlot } from '../redis/cluster-slot.ts';

const MSET = Buffer.from('MSET');

/**
 * A multi-key command whose keys span hash slots, rewritten as one command per slot with the same effect
 * (a cluster refuses it whole with CROSSSLOT); undefined when splitting would change its meaning.
 *
 * DEL and UNLINK act on each key alone. MSET sets each pair alone; so does MSETNX once it is in the
 * stream, since a source only propagates an MSETNX that set every key.
 */
export function splitBySlot(argv: readonly Buffer[]): { slot: number; argv: Buffer[] }[] | undefined {
  const name = asciiLower(argv[0]!);
  if (name === 'del' || name === 'unlink') return group(argv[0]!, argv.slice(1), 1);
  if ((name === 'mset' || name === 'msetnx') && argv.length % 2 === 1) return group(MSET, argv.slice(1), 2);
  return undefined;
}

function group(command: Buffer, args: Buffer[], stride: number): { slot: number; argv: Buffer[] }[] {
  const bySlot = new Map<number, Buffer[]>();
  for (let i = 0; i < args.length; i += stride) {
    const slot = keySlot(args[i]!);
    let argv = bySlot.get(slot);
    if (!argv) {
      argv = [command];
      bySlot.set(slot, argv);
    }
    for (let j = 0; j < stride; j++) argv.push(args[i + j]!);
  }
  return [...bySlot].map(([slot, argv]) => ({ slot, argv }));
}
