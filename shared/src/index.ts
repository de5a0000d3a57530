/** @conveyor/shared: the one contract between the api, the worker and the dashboard. */
export * from './config.js';
export * from './errors.js';
export * from './logger.js';
export * from './metrics.js';
export * from './redis.js';
export * from './states.js';
export * from './broker/broker-connection.js';
export * from './broker/task-publisher.js';
export * from './broker/topology.js';
export * from './protocol/celery-v2.js';
export * from './store/keys.js';
export * from './store/task-record.js';
export * from './store/task-store.js';
export * from './tasks/builtin.js';
export * from './tasks/registry.js';
export * from './tasks/task-type.js';
