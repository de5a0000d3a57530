/**
 * prom-client helpers: one registry per process with the default Node
 * metrics, and every Conveyor metric named `conveyor_*`.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Role } from './config.js';

export function createMetricsRegistry(role: Role): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ role });
  collectDefaultMetrics({ register: registry, prefix: 'conveyor_' });
  return registry;
}
