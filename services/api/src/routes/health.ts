/**
 * Probes and metrics: `/health` (the process is alive), `/ready` (it can
 * take tasks: broker channel open and Redis connected), `/metrics`
 * (Prometheus text). None of them touches the network, so a probe never
 * hangs on the outage it is meant to report.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';

export const HealthBody = Type.Object({ status: Type.Literal('ok') });
export const ReadyBody = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('unavailable')]),
  broker: Type.Boolean(),
  redis: Type.Boolean(),
});

export const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/health',
    { schema: { summary: 'Liveness', response: { 200: HealthBody } }, logLevel: 'warn' },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/ready',
    { schema: { summary: 'Readiness', response: { 200: ReadyBody, 503: ReadyBody } }, logLevel: 'warn' },
    async (_request, reply) => {
      const broker = app.publisher.ready;
      const redis = app.redis.status === 'ready';
      const ready = broker && redis;
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable', broker, redis });
    },
  );

  app.get(
    '/metrics',
    { schema: { summary: 'Prometheus metrics', response: { 200: Type.String() } }, logLevel: 'warn' },
    async (_request, reply) => {
      const { registry } = app.metrics;
      return reply.type(registry.contentType).send(await registry.metrics());
    },
  );
};
