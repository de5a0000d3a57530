/**
 * Entry point of the worker process: the only place that reads the
 * environment and handles signals. SIGTERM or SIGINT stops consuming, lets
 * running tasks finish within SHUTDOWN_GRACE_MS, requeues the rest, exits.
 */
import { hostname } from 'node:os';
import { createLogger, createMetricsRegistry, loadConfigOrExit, onShutdown } from '@conveyor/shared';
import { buildHealthApp } from './health-app.js';
import { limitHeapGrowth } from './heap-growth.js';
import { Worker } from './worker.js';

const config = loadConfigOrExit('worker', process.env, hostname());
limitHeapGrowth(config.workerHeapGrowingPercent);
const logger = createLogger(config, { worker: config.workerName });
const metrics = createMetricsRegistry('worker');

const worker = await Worker.start({ config, logger, metrics });
const app = buildHealthApp({ logger, metrics, isReady: () => worker.ready });
await app.listen({ host: config.host, port: config.port });
logger.info({ queues: config.queues, concurrency: config.workerConcurrency, port: config.port }, 'worker started');

// The grace covers the tasks' own grace plus a margin to close connections.
onShutdown({ delayMs: config.shutdownGraceMs + 5000, logger }, async ({ signal, err }) => {
  if (err) logger.error({ err }, 'worker crashed');
  logger.info({ signal }, 'worker stopping');
  await app.close();
  await worker.stop();
  logger.info('worker stopped');
});
