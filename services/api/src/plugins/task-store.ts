/**
 * The task store (records and indexes in Redis), the task-type registry
 * (compiled kwargs validators) and the result waiter as a named plugin. Both are built once per
 * process: schema compilation and Lua script definition are start-up costs.
 */
import { ResultWaiter, TaskRegistry, TaskStore } from '@conveyor/shared';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

declare module 'fastify' {
  interface FastifyInstance {
    taskStore: TaskStore;
    taskRegistry: TaskRegistry;
    resultWaiter: ResultWaiter;
  }
}

async function taskStore(app: FastifyInstance): Promise<void> {
  const { prefix, resultTtlSeconds } = app.config;
  const store = new TaskStore(app.redis, { prefix, resultTtlSeconds });
  app.decorate('taskStore', store);
  app.decorate('taskRegistry', new TaskRegistry());
  // Long-polls wait on pub/sub, which needs a connection of its own.
  const waiter = new ResultWaiter(store, app.redis.duplicate());
  app.decorate('resultWaiter', waiter);
  app.addHook('onClose', () => waiter.close());
}

export const taskStorePlugin = fp(taskStore, {
  name: 'conveyor-task-store',
  fastify: '5.x',
  dependencies: ['conveyor-redis'],
  decorators: { fastify: ['config'] },
});
