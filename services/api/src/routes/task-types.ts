/**
 * `GET /api/task-types`: the task types this installation accepts, with the
 * JSON schema of their kwargs, so clients (and the HTML form) can build a
 * valid submission without reading the source.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { errorResponses } from '../errors.js';

const NullableSeconds = Type.Union([Type.Number(), Type.Null()]);

export const TaskTypesBody = Type.Object({
  types: Type.Array(
    Type.Object({
      name: Type.String(),
      description: Type.String(),
      queue: Type.String(),
      kwargs: Type.Unknown({ description: 'JSON schema of the kwargs object' }),
      retry: Type.Object({ maxRetries: Type.Integer(), baseDelayMs: Type.Number(), maxDelayMs: Type.Number() }),
      timeLimit: Type.Object({ softSeconds: NullableSeconds, hardSeconds: NullableSeconds }),
    }),
  ),
});

export const taskTypeRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // The registry is fixed at start-up, so the answer is computed once.
  const body = {
    types: app.taskRegistry.list().map(({ name, description, queue, kwargs, retry, timeLimit }) => ({
      name,
      description,
      queue,
      kwargs,
      retry,
      timeLimit,
    })),
  };
  app.get(
    '/api/task-types',
    { schema: { summary: 'List task types', response: { 200: TaskTypesBody, ...errorResponses } } },
    async () => body,
  );
};
