/** The worker's Prometheus metrics, named after what Flower users know. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface WorkerMetrics {
  readonly registry: Registry;
  readonly finished: Counter<'type' | 'state'>;
  readonly runtime: Histogram<'type'>;
  readonly active: Gauge;
  readonly deadLettered: Counter<'code'>;
  readonly duplicates: Counter<'reason'>;
}

export function createWorkerMetrics(registry: Registry): WorkerMetrics {
  return {
    registry,
    finished: new Counter({
      name: 'conveyor_worker_tasks_finished_total',
      help: 'Tasks this worker brought to a terminal or RETRY state, by type and state.',
      labelNames: ['type', 'state'],
      registers: [registry],
    }),
    runtime: new Histogram({
      name: 'conveyor_worker_task_runtime_seconds',
      help: 'Handler run time per attempt.',
      labelNames: ['type'],
      buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 1, 5, 30, 120, 600],
      registers: [registry],
    }),
    active: new Gauge({
      name: 'conveyor_worker_tasks_active',
      help: 'Deliveries being processed right now.',
      registers: [registry],
    }),
    deadLettered: new Counter({
      name: 'conveyor_worker_dead_lettered_total',
      help: 'Messages sent to the dead-letter queue, by error code.',
      labelNames: ['code'],
      registers: [registry],
    }),
    duplicates: new Counter({
      name: 'conveyor_worker_duplicate_deliveries_total',
      help: 'Deliveries acked without running: the task was already terminal or further along.',
      labelNames: ['reason'],
      registers: [registry],
    }),
  };
}
