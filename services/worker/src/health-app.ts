/**
 * The worker's small HTTP face (port 9091): liveness, readiness (broker
 * connected, consuming, Redis reachable) and Prometheus metrics.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from '@conveyor/shared';
import type { Registry } from 'prom-client';

export interface HealthAppOptions {
  logger: Logger;
  metrics: Registry;
  isReady: () => boolean;
}

export function buildHealthApp({ logger, metrics, isReady }: HealthAppOptions): FastifyInstance {
  // Typed as FastifyBaseLogger so the app keeps Fastify's default instance type.
  const loggerInstance: FastifyBaseLogger = logger.child({ component: 'http' });
  // Probes and scrapes every few seconds would drown the task logs.
  const logController = new LogController({ disableRequestLogging: true });
  const app = Fastify({ loggerInstance, logController });
  const status = { type: 'object', properties: { status: { type: 'string' } } } as const;
  app.get('/health', { schema: { response: { 200: status } } }, async () => ({ status: 'ok' }));
  app.get('/ready', { schema: { response: { 200: status, 503: status } } }, async (_request, reply) =>
    isReady() ? { status: 'ready' } : reply.code(503).send({ status: 'not ready' }),
  );
  app.get('/metrics', async (_request, reply) => {
    reply.type(metrics.contentType);
    return metrics.metrics();
  });
  return app;
}
