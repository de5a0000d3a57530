/**
 * Graceful shutdown of a role process, on close-with-grace: SIGTERM, SIGINT
 * or an uncaught error runs `close` once, bounded by `delayMs`, then exits.
 * So do the other signals whose default would kill the process at once
 * (SIGHUP, SIGQUIT, SIGUSR2 and the fatal ones close-with-grace lists): a
 * graceful stop is never worse than that default. SIGUSR2 is therefore
 * taken: `node --heapsnapshot-signal=SIGUSR2` would stop a role as well as
 * snapshot it, so give such tools another signal.
 *
 * SIGINT is debounced: Ctrl-C in a terminal reaches a role both directly
 * (same process group) and forwarded by a supervisor such as `pnpm start`'s
 * concurrently, milliseconds apart. close-with-grace treats any second signal
 * as "exit now", which would cut the grace period short; here only a second
 * Ctrl-C pressed later (after DOUBLE_PRESS_MS) does that.
 */
import closeWithGrace from 'close-with-grace';
import type { Logger } from './logger.js';

const DOUBLE_PRESS_MS = 500;

export interface ShutdownOptions {
  delayMs: number;
  logger: Logger;
}

export function onShutdown(
  { delayMs, logger }: ShutdownOptions,
  close: (reason: { signal?: string; err?: Error }) => Promise<void>,
): void {
  const closer = closeWithGrace({ delay: delayMs, logger, skip: ['SIGINT'] }, close);
  let firstInterrupt = 0;
  process.on('SIGINT', () => {
    const now = Date.now();
    if (firstInterrupt === 0) {
      firstInterrupt = now;
      void closer.close();
      return;
    }
    if (now - firstInterrupt < DOUBLE_PRESS_MS) return;
    logger.error('second SIGINT, exiting now');
    process.exit(1);
  });
}
