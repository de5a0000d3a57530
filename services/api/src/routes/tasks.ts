/**
 * The task resource: `POST /api/tasks` submits one, `GET /api/tasks/:id`
 * reads its record (optionally waiting for it to finish). The handlers are
 * thin adapters over the producer functions of @conveyor/shared.
 */
import { Errors, MAX_DELAY_SECONDS, submitTask, TASK_ID_PATTERN, TaskStates, withField } from '@conveyor/shared';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { ErrorBody, errorResponses } from '../errors.js';

/** The longest long-poll: below common proxy idle timeouts (60 s). */
export const MAX_WAIT_SECONDS = 30;

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()]);

export const SubmissionBody = Type.Object(
  {
    type: Type.String({ minLength: 1, maxLength: 200, description: 'Task type name, see GET /api/task-types' }),
    kwargs: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: "Keyword arguments, checked against the type's schema",
      }),
    ),
    queue: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: "Defaults to the type's queue" })),
    countdown: Type.Optional(
      Type.Number({ minimum: 0, maximum: MAX_DELAY_SECONDS, description: 'Seconds before the task may start' }),
    ),
    eta: Type.Optional(Type.String({ format: 'date-time', description: 'Not before this time (excludes countdown)' })),
    expires: Type.Optional(
      Type.Union(
        [Type.Number({ exclusiveMinimum: 0, maximum: MAX_DELAY_SECONDS }), Type.String({ format: 'date-time' })],
        {
          description: 'Seconds from now or a date-time; a task not started by then is revoked',
        },
      ),
    ),
    priority: Type.Optional(Type.Integer({ minimum: 0, maximum: 255 })),
  },
  { additionalProperties: false },
);

const Links = Type.Object({ self: Type.String() });

export const AcceptedBody = Type.Object({
  id: Type.String({ format: 'uuid' }),
  type: Type.String(),
  queue: Type.String(),
  state: Type.Literal('PENDING'),
  eta: Nullable(Type.String()),
  expires: Nullable(Type.String()),
  links: Links,
});

export const TaskRecordBody = Type.Object({
  id: Type.String(),
  type: Type.String(),
  queue: Type.String(),
  state: Type.Enum(TaskStates),
  args: Type.Array(Type.Unknown()),
  kwargs: Type.Record(Type.String(), Type.Unknown()),
  result: Type.Unknown(),
  error: Nullable(Type.String()),
  errorCode: Nullable(Type.String()),
  traceback: Nullable(Type.String()),
  attempts: Type.Integer(),
  worker: Nullable(Type.String()),
  progress: Nullable(Type.Number()),
  created: Nullable(Type.String()),
  eta: Nullable(Type.String()),
  expires: Nullable(Type.String()),
  received: Nullable(Type.String()),
  started: Nullable(Type.String()),
  finished: Nullable(Type.String()),
  runtime: Nullable(Type.Number()),
  links: Links,
});

const unavailable = { 503: ErrorBody } as const;

const taskPath = (id: string) => `/api/tasks/${id}`;

export const taskRoutes: FastifyPluginAsyncTypebox<{ origin: string }> = async (app, options) => {
  // Long-polls end early on shutdown, so a graceful close is not held up by waiting clients.
  const shutdown = new AbortController();
  app.addHook('preClose', async () => shutdown.abort());

  app.post(
    '/api/tasks',
    {
      schema: {
        summary: 'Submit a task',
        body: SubmissionBody,
        response: { 202: AcceptedBody, ...errorResponses, 413: ErrorBody, 415: ErrorBody, ...unavailable },
      },
    },
    async (request, reply) => {
      const started = process.hrtime.bigint();
      const accepted = await submitTask(
        {
          config: app.config,
          registry: app.taskRegistry,
          store: app.taskStore,
          publisher: app.publisher,
          origin: options.origin,
          logger: request.log,
        },
        request.body,
      );
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      app.metrics.tasksSubmitted.inc({ type: accepted.type });
      app.metrics.submitSeconds.observe({ type: accepted.type }, seconds);
      const self = taskPath(accepted.id);
      return reply
        .code(202)
        .header('Location', self)
        .send({ ...accepted, links: { self } });
    },
  );

  app.get(
    '/api/tasks/:id',
    {
      schema: {
        summary: "Read a task's state and result",
        params: Type.Object({ id: Type.String({ description: 'Task id (UUID)' }) }),
        querystring: Type.Object({
          wait: Type.Optional(
            Type.Number({
              minimum: 0,
              maximum: MAX_WAIT_SECONDS,
              description: 'Seconds to wait for the task to finish before answering',
            }),
          ),
        }),
        response: { 200: TaskRecordBody, ...errorResponses, ...unavailable },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      // Checked here rather than by schema so that the error is CNV_INVALID_TASK_ID, not a generic one.
      if (!TASK_ID_PATTERN.test(id)) throw withField(new Errors.INVALID_TASK_ID(), 'id');
      const waitMs = (request.query.wait ?? 0) * 1000;
      let signal = shutdown.signal;
      if (waitMs > 0) {
        // The response closes early when the client goes away: stop polling for nobody.
        const gone = new AbortController();
        reply.raw.once('close', () => gone.abort());
        signal = AbortSignal.any([shutdown.signal, gone.signal]);
      }
      const record = await app.resultWaiter.wait(id, waitMs, signal);
      if (record === null) throw new Errors.TASK_NOT_FOUND(id);
      return { ...record, links: { self: taskPath(id) } };
    },
  );
};
