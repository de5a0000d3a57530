/**
 * Test tiers (STYLE.md): `unit` needs no network and no build; `integration`
 * talks to a real RabbitMQ and Redis (chosen by test/support/global-setup.ts)
 * and may spawn built role processes. `npx vitest run` runs both;
 * `--project unit` or `--project integration` runs one.
 */
import { fileURLToPath } from 'node:url';
import { configDefaults, defineConfig } from 'vitest/config';

const exclude = [...configDefaults.exclude, '**/dist/**', '**/coverage/**', 'bench/.work/**'];

export default defineConfig({
  resolve: {
    // Tests run against shared's sources, so `pnpm test:unit` needs no build
    // and never sees a stale dist. Spawned roles still load shared/dist.
    alias: [
      { find: /^@conveyor\/shared$/, replacement: fileURLToPath(new URL('shared/src/index.ts', import.meta.url)) },
    ],
  },
  test: {
    // Global setup teardown stops containers when testcontainers started some.
    teardownTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          // Unit files first, then integration on its own: keeps CPU-heavy unit tests
          // from skewing the timing of spawned roles on a small machine.
          sequence: { groupOrder: 0 },
          include: ['**/test/unit/**/*.test.ts', 'shared/test/**/*.test.ts'],
          exclude,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          sequence: { groupOrder: 1 },
          include: ['services/*/test/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: [...exclude, '**/test/unit/**', 'shared/test/**'],
          globalSetup: ['test/support/global-setup.ts'],
          setupFiles: ['test/support/setup-file.ts'],
          // Real brokers, real processes: start-up, retries and shutdown grace take seconds.
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // One file at a time: the machine has 2 cores and the tests spawn role processes
          // whose timing assertions suffer under contention.
          fileParallelism: false,
        },
      },
    ],
  },
});
