#!/usr/bin/env node
import { reexecForSync } from '../lib/cli/sync-process.ts';

// Before anything else is loaded: `sync` re-executes itself with the memory settings of a long run.
reexecForSync();
const { main } = await import('../lib/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
