/**
 * The api process: reads the environment (the only module that does), builds
 * the app, listens, and closes gracefully on SIGTERM/SIGINT: stop accepting,
 * let in-flight submissions get their confirms, then close Redis and AMQP.
 */
import { hostname } from 'node:os';
import { createLogger, loadConfigOrExit, onShutdown } from '@conveyor/shared';
import { buildApp } from './app.js';

const config = loadConfigOrExit('api', process.env, hostname());
const logger = createLogger(config);
const app = buildApp({ config, logger });

onShutdown({ delayMs: config.shutdownGraceMs, logger }, async ({ signal, err }) => {
  if (err) logger.error({ err }, 'closing after an unexpected error');
  else logger.info({ signal }, 'shutting down');
  await app.close();
});

try {
  await app.listen({ host: config.host, port: config.port });
  logger.info({ host: config.host, port: config.port, prefix: config.prefix, queues: config.queues }, 'api listening');
} catch (error) {
  logger.fatal({ err: error }, 'api failed to start');
  process.exit(1);
}
