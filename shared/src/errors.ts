/**
 * Every error code Conveyor emits, in one registry. Codes are stable and
 * prefixed `CNV_`; tests and clients match on `code`, never on prose. The
 * status code is what the HTTP roles answer with when the error reaches them.
 */
import createError from '@fastify/error';

export const Errors = {
  CONFIG_INVALID: createError('CNV_CONFIG_INVALID', 'Invalid configuration: %s'),
  // Submissions (400s: nothing is queued or stored).
  UNKNOWN_TASK_TYPE: createError('CNV_UNKNOWN_TASK_TYPE', 'Unknown task type "%s"', 400),
  INVALID_KWARGS: createError('CNV_INVALID_KWARGS', 'Invalid kwargs: %s', 400),
  INVALID_SUBMISSION: createError('CNV_INVALID_SUBMISSION', '%s', 400),
  UNKNOWN_QUEUE: createError('CNV_UNKNOWN_QUEUE', 'Queue "%s" is not served by this installation', 400),
  INVALID_TASK_ID: createError('CNV_INVALID_TASK_ID', 'Task id must be a UUID', 400),
  TASK_NOT_FOUND: createError('CNV_TASK_NOT_FOUND', 'Task %s not found', 404),
  // Revoke and idempotency keys (services/api routes/tasks.ts, producer/idempotency.ts).
  TASK_FINISHED: createError('CNV_TASK_FINISHED', 'Task %s already finished: %s', 409),
  INVALID_IDEMPOTENCY_KEY: createError('CNV_INVALID_IDEMPOTENCY_KEY', 'Idempotency-Key %s', 400),
  IDEMPOTENCY_CONFLICT: createError(
    'CNV_IDEMPOTENCY_CONFLICT',
    'Idempotency-Key was already used with a different request body (task %s)',
    409,
  ),
  IDEMPOTENCY_IN_PROGRESS: createError(
    'CNV_IDEMPOTENCY_IN_PROGRESS',
    'A request with this Idempotency-Key is still being processed; retry shortly',
    409,
  ),
  // Dead-letter operations (broker/dead-letters.ts).
  DEAD_LETTER_NOT_FOUND: createError('CNV_DEAD_LETTER_NOT_FOUND', 'No dead letter %s', 404),
  DEAD_LETTER_NOT_REQUEUEABLE: createError(
    'CNV_DEAD_LETTER_NOT_REQUEUEABLE',
    'Dead letter %s cannot be requeued: %s',
    409,
  ),
  // Requests an HTTP role refuses before any handler runs (and the catch-alls of its error handler).
  INVALID_JSON: createError('CNV_INVALID_JSON', 'Request body is not valid JSON', 400),
  BODY_TOO_LARGE: createError('CNV_BODY_TOO_LARGE', 'Request body is larger than %s bytes', 413),
  UNSUPPORTED_MEDIA_TYPE: createError('CNV_UNSUPPORTED_MEDIA_TYPE', 'Content-Type %s is not supported: send JSON', 415),
  ROUTE_NOT_FOUND: createError('CNV_ROUTE_NOT_FOUND', 'Route %s %s not found', 404),
  BAD_REQUEST: createError('CNV_BAD_REQUEST', '%s', 400),
  INTERNAL: createError('CNV_INTERNAL', 'Internal server error', 500),
  // Infrastructure (503s with Retry-After: the client may try again).
  BROKER_UNAVAILABLE: createError('CNV_BROKER_UNAVAILABLE', 'The message broker is unavailable: %s', 503),
  STORE_UNAVAILABLE: createError('CNV_STORE_UNAVAILABLE', 'The result store is unavailable: %s', 503),
  // Messages a worker cannot process (dead-lettered with this code as reason).
  INVALID_MESSAGE: createError('CNV_INVALID_MESSAGE', 'Invalid task message: %s'),
  // Outcomes a worker records on a task it did not run to success.
  TASK_EXPIRED: createError('CNV_TASK_EXPIRED', 'Task expired at %s before a worker received it'),
  SIMULATED_FAILURE: createError('CNV_SIMULATED_FAILURE', '%s'),
  RESULT_NOT_SERIALIZABLE: createError('CNV_RESULT_NOT_SERIALIZABLE', 'Task result is not JSON-serialisable: %s'),
  SOFT_TIME_LIMIT: createError('CNV_SOFT_TIME_LIMIT', 'Soft time limit of %s s exceeded'),
  HARD_TIME_LIMIT: createError('CNV_HARD_TIME_LIMIT', 'Hard time limit of %s s exceeded'),
  TASK_REVOKED: createError('CNV_TASK_REVOKED', '%s'),
  POISON_MESSAGE: createError('CNV_POISON_MESSAGE', 'Redelivered %s times without finishing (MAX_REDELIVERIES=%s)'),
  EFFECT_UNCERTAIN: createError(
    'CNV_EFFECT_UNCERTAIN',
    'Side effect "%s" was started by an earlier delivery that did not finish; not repeating it',
  ),
  // Control flow a handler asks for (tasks/control-errors.ts): not failures of the worker.
  RETRY_REQUESTED: createError('CNV_RETRY_REQUESTED', '%s'),
  PERMANENT_FAILURE: createError('CNV_PERMANENT_FAILURE', '%s'),
} as const;

/** A submission error that names the request field at fault (`kwargs.duration`, `countdown`, …). */
export function withField<E extends Error>(error: E, field: string): E & { field: string } {
  return Object.assign(error, { field });
}

export function hasCode(error: unknown, code: string): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === code;
}
