/**
 * The api's Prometheus registry (default Node metrics plus the api's own) as
 * a named plugin. One registry per app instance, so tests that build several
 * apps in one process never collide on metric names.
 */
import { createMetricsRegistry } from '@conveyor/shared';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, Histogram, type Registry } from 'prom-client';

export interface ApiMetrics {
  readonly registry: Registry;
  /** Tasks accepted (202), by type. */
  readonly tasksSubmitted: Counter<'type'>;
  /** Seconds from receiving a valid submission to the broker's confirm, accepted submissions only. */
  readonly submitSeconds: Histogram<'type'>;
  /** Submissions answered with an earlier request's task (same Idempotency-Key and body). */
  readonly idempotentReplays: Counter;
  /** Tasks revoked through the api, by whether running ones were also terminated. */
  readonly tasksRevoked: Counter<'terminate'>;
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: ApiMetrics;
  }
}

async function metrics(app: FastifyInstance): Promise<void> {
  const registry = createMetricsRegistry('api');
  const tasksSubmitted = new Counter({
    name: 'conveyor_api_tasks_submitted_total',
    help: 'Tasks accepted by the api (answered 202), by task type.',
    labelNames: ['type'],
    registers: [registry],
  });
  const submitSeconds = new Histogram({
    name: 'conveyor_api_submit_duration_seconds',
    help: 'Time from a valid submission to the broker confirm (Redis write + publish), accepted submissions only.',
    labelNames: ['type'],
    // A confirm on a healthy local broker takes about a millisecond; the tail shows broker pressure.
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const idempotentReplays = new Counter({
    name: 'conveyor_api_idempotent_replays_total',
    help: 'Submissions answered 202 with the task of an earlier request under the same Idempotency-Key.',
    registers: [registry],
  });
  const tasksRevoked = new Counter({
    name: 'conveyor_api_tasks_revoked_total',
    help: 'Tasks revoked through the api, by whether a running one was also told to terminate.',
    labelNames: ['terminate'],
    registers: [registry],
  });
  app.decorate('metrics', { registry, tasksSubmitted, submitSeconds, idempotentReplays, tasksRevoked });
}

export const metricsPlugin = fp(metrics, { name: 'conveyor-metrics', fastify: '5.x' });
