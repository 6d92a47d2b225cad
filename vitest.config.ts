import { defineConfig } from 'vitest/config';

// Integration tests start real redis-server processes; the machine has 2 cores, so files run
// with limited parallelism and generous timeouts (no timing assertions live in tests).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    maxWorkers: 2,
    fileParallelism: true,
  },
});
