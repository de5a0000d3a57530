/**
 * The task resource: `POST /api/tasks` submits one (once per Idempotency-Key
 * when the client sends one), `GET /api/tasks/:id` reads its record
 * (optionally waiting for it to finish), `POST /api/tasks/:id/revoke` stops
 * it. The handlers are thin adapters over the producer functions of
 * @conveyor/shared.
 */
import {
  encodeControlMessage,
  Errors,
  IDEMPOTENCY_HEADER,
  IDEMPOTENCY_KEY_MAX_LENGTH,
  isTerminal,
  MAX_DELAY_SECONDS,
  readAttemptErrors,
  RETRY_OVERRIDE_LIMITS,
  storeUnavailable,
  submitIdempotent,
  submitTask,
  TASK_ID_PATTERN,
  TaskStates,
  withField,
  type Accepted,
  type ControlMessage,
  type TaskRecord,
} from '@conveyor/shared';
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
    retry: Type.Optional(
      Type.Object(
        {
          maxRetries: Type.Optional(Type.Integer({ minimum: 0, maximum: RETRY_OVERRIDE_LIMITS.maxRetries })),
          baseDelayMs: Type.Optional(Type.Integer({ minimum: 0, maximum: RETRY_OVERRIDE_LIMITS.maxDelayMs })),
          maxDelayMs: Type.Optional(Type.Integer({ minimum: 0, maximum: RETRY_OVERRIDE_LIMITS.maxDelayMs })),
        },
        {
          additionalProperties: false,
          description:
            "Overrides of the type's retry policy for this task only: retry n waits random(0, min(maxDelayMs, baseDelayMs·2ⁿ))",
        },
      ),
    ),
  },
  { additionalProperties: false },
);

const SubmitHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      description:
        `1–${IDEMPOTENCY_KEY_MAX_LENGTH} printable characters. The same key with the same body answers 202 with the ` +
        'same task (and `Idempotent-Replayed: true`) for RESULT_TTL_SECONDS; with a different body, 409 ' +
        'CNV_IDEMPOTENCY_CONFLICT.',
    }),
  ),
});

export const RevokeBody = Type.Union(
  [
    Type.Object(
      {
        terminate: Type.Optional(
          Type.Boolean({
            description: 'Also stop the task if a worker is running it now (default false: it may run to its end)',
          }),
        ),
      },
      { additionalProperties: false },
    ),
    // No body at all (no Content-Type either): Fastify hands the handler null. Same as {}.
    Type.Null(),
  ],
  { description: 'Optional: `{ "terminate": true }`' },
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
  progressMessage: Nullable(Type.String()),
  attemptErrors: Type.Array(
    Type.Object({
      attempt: Type.Integer(),
      error: Type.String(),
      errorCode: Type.String(),
      at: Type.String({ description: 'When the attempt failed' }),
      retryAt: Type.Optional(Type.String({ description: 'When the next attempt was due; absent on the last' })),
    }),
    { description: 'One entry per attempt that ended in an error (each retry and the final failure), oldest first' },
  ),
  links: Links,
});

/** A 409 for a task that already finished: the error body plus the state it finished in. */
export const TaskFinishedBody = Type.Object(
  { ...ErrorBody.properties, state: Type.Enum(TaskStates, { description: 'The state the task finished in' }) },
  { additionalProperties: false },
);

const unavailable = { 503: ErrorBody } as const;

const taskPath = (id: string) => `/api/tasks/${id}`;

const IdParams = Type.Object({ id: Type.String({ description: 'Task id (UUID)' }) });

/** A revoke that keeps meeting a newer attempt (each round trip a new one started) gives up after this many reads. */
const REVOKE_ROUNDS = 3;

export const taskRoutes: FastifyPluginAsyncTypebox<{ origin: string }> = async (app, options) => {
  // Long-polls end early on shutdown, so a graceful close is not held up by waiting clients.
  const shutdown = new AbortController();
  app.addHook('preClose', async () => shutdown.abort());

  // Everything but the logger is the same for every request: looked up once, not per submit.
  const { config, taskRegistry: registry, taskStore: store, publisher } = app;
  const submitContext = (request: { log: SubmitLogger }) => ({
    config,
    registry,
    store,
    publisher,
    origin: options.origin,
    logger: request.log,
  });
  const { tasksSubmitted, submitSeconds, idempotentReplays } = app.metrics;

  const view = async (record: TaskRecord) => {
    let attemptErrors;
    try {
      attemptErrors = await readAttemptErrors(app.redis, app.taskStore.keys, record.id);
    } catch (error) {
      throw storeUnavailable(error);
    }
    return { ...record, attemptErrors, links: { self: taskPath(record.id) } };
  };

  app.post(
    '/api/tasks',
    {
      schema: {
        summary: 'Submit a task',
        description:
          'Validates, records the task PENDING and answers 202 once the broker confirmed the message. ' +
          `With an ${IDEMPOTENCY_HEADER} header a repeated request gets the first one's task instead of a new one.`,
        headers: SubmitHeaders,
        body: SubmissionBody,
        response: {
          202: AcceptedBody,
          ...errorResponses,
          409: ErrorBody,
          413: ErrorBody,
          415: ErrorBody,
          ...unavailable,
        },
      },
    },
    async (request, reply) => {
      const started = performance.now();
      const key = request.headers['idempotency-key'];
      let accepted: Accepted;
      let replayed = false;
      if (key === undefined) {
        accepted = await submitTask(submitContext(request), request.body);
      } else {
        ({ accepted, replayed } = await submitIdempotent(
          { ...submitContext(request), redis: app.redis, ttlSeconds: config.resultTtlSeconds },
          key,
          request.body,
        ));
      }
      if (replayed) {
        idempotentReplays.inc();
        void reply.header('Idempotent-Replayed', 'true');
      } else {
        const labels = { type: accepted.type };
        tasksSubmitted.inc(labels);
        submitSeconds.observe(labels, (performance.now() - started) / 1000);
      }
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
        params: IdParams,
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
      return view(record);
    },
  );

  app.post(
    '/api/tasks/:id/revoke',
    {
      schema: {
        summary: 'Revoke a task',
        description:
          'Records the task REVOKED, so a worker that receives it later acks it without running it. ' +
          'With `terminate: true` a worker running it now also stops it. Answers 200 with the record. ' +
          'Revoking a REVOKED task again is a no-op answered 200 (a retried request succeeds); ' +
          'a task that already ended SUCCESS or FAILURE cannot be revoked: 409 CNV_TASK_FINISHED with its `state`.',
        params: IdParams,
        body: RevokeBody,
        response: { 200: TaskRecordBody, ...errorResponses, 409: TaskFinishedBody, 415: ErrorBody, ...unavailable },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      if (!TASK_ID_PATTERN.test(id)) throw withField(new Errors.INVALID_TASK_ID(), 'id');
      const terminate = request.body?.terminate ?? false;
      for (let round = 0; round < REVOKE_ROUNDS; round++) {
        const record = await readRecord(id);
        if (record === null) throw new Errors.TASK_NOT_FOUND(id);
        if (record.state !== 'REVOKED' && isTerminal(record.state)) {
          const error = new Errors.TASK_FINISHED(id, record.state);
          return reply.code(409).send({
            statusCode: 409,
            code: error.code,
            error: 'Conflict',
            message: error.message,
            state: record.state,
          });
        }
        if (record.state !== 'REVOKED') {
          // The attempt it is at now: REVOKED outranks every state of that attempt. If a new
          // attempt starts in between, the store answers 'behind' and we read again.
          let outcome;
          try {
            outcome = await app.taskStore.transition(id, 'REVOKED', record.attempts, {
              error: 'revoked',
              errorCode: 'CNV_TASK_REVOKED',
              finished: Date.now(),
            });
          } catch (error) {
            throw storeUnavailable(error);
          }
          if (!outcome.applied) {
            if (outcome.reason === 'unknown') throw new Errors.TASK_NOT_FOUND(id);
            continue; // 'behind' (a new attempt) or 'terminal' (finished meanwhile): look again
          }
          app.metrics.tasksRevoked.inc({ terminate: String(terminate) });
        }
        if (terminate) {
          // Also on a repeated revoke: the first one's PUBLISH may be the part that failed.
          const receivers = await publishControl({ type: 'terminate', id });
          request.log.info({ taskId: id, receivers }, 'terminate sent to workers');
        }
        const revoked = await readRecord(id);
        if (revoked === null) throw new Errors.TASK_NOT_FOUND(id);
        return view(revoked);
      }
      throw new Error(`revoke of ${id} kept meeting newer attempts`);
    },
  );

  async function readRecord(id: string): Promise<TaskRecord | null> {
    try {
      return await app.taskStore.get(id);
    } catch (error) {
      throw storeUnavailable(error);
    }
  }

  /** Workers listen on `keys.control`; resolves with how many processes received it. */
  async function publishControl(message: ControlMessage): Promise<number> {
    try {
      return await app.redis.publish(app.taskStore.keys.control, encodeControlMessage(message));
    } catch (error) {
      throw storeUnavailable(error);
    }
  }
};

type SubmitLogger = Parameters<typeof submitTask>[0]['logger'];
