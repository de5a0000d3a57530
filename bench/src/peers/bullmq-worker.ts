/**
 * The BullMQ peer's worker process: one `Worker` with a processor that
 * returns null, at BENCH_CONCURRENCY, on queue BENCH_QUEUE. BullMQ's default
 * options otherwise (its documented setup: a connection with
 * maxRetriesPerRequest null, autorun). Prints BENCH-READY once connected;
 * SIGTERM closes it gracefully.
 */
import { Worker } from 'bullmq';
import { redisOptionsFromUrl } from '../util/redis-options.js';

const queue = process.env.BENCH_QUEUE;
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? '50');
if (!queue) throw new Error('BENCH_QUEUE is required');

const worker = new Worker(queue, async () => null, {
  concurrency,
  connection: {
    ...redisOptionsFromUrl(process.env.REDIS_URL ?? 'redis://localhost:6379/0'),
    maxRetriesPerRequest: null,
  },
});
worker.on('error', (error) => console.error(`bullmq worker error: ${error.message}`));
await worker.waitUntilReady();
console.log('BENCH-READY');

let closing = false;
const close = () => {
  if (closing) return;
  closing = true;
  worker.close().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
};
process.on('SIGTERM', close);
process.on('SIGINT', close);
