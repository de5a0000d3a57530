/**
 * The task store (records and indexes in Redis) and the task-type registry
 * (compiled kwargs validators) as a named plugin. Both are built once per
 * process: schema compilation and Lua script definition are start-up costs.
 */
import { TaskRegistry, TaskStore } from '@conveyor/shared';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

declare module 'fastify' {
  interface FastifyInstance {
    taskStore: TaskStore;
    taskRegistry: TaskRegistry;
  }
}

async function taskStore(app: FastifyInstance): Promise<void> {
  const { prefix, resultTtlSeconds } = app.config;
  app.decorate('taskStore', new TaskStore(app.redis, { prefix, resultTtlSeconds }));
  app.decorate('taskRegistry', new TaskRegistry());
}

export const taskStorePlugin = fp(taskStore, {
  name: 'conveyor-task-store',
  fastify: '5.x',
  dependencies: ['conveyor-redis'],
  decorators: { fastify: ['config'] },
});
