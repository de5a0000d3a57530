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
  // Infrastructure (503s with Retry-After: the client may try again).
  BROKER_UNAVAILABLE: createError('CNV_BROKER_UNAVAILABLE', 'The message broker is unavailable: %s', 503),
  STORE_UNAVAILABLE: createError('CNV_STORE_UNAVAILABLE', 'The result store is unavailable: %s', 503),
  // Messages a worker cannot process (dead-lettered with this code as reason).
  INVALID_MESSAGE: createError('CNV_INVALID_MESSAGE', 'Invalid task message: %s'),
  // State transitions refused by the store (mapped from negative Lua codes).
  TASK_EXISTS: createError('CNV_TASK_EXISTS', 'Task %s already exists', 409),
} as const;

export type ErrorCode = ReturnType<(typeof Errors)[keyof typeof Errors]>['code'];

/** A submission error that names the request field at fault (`kwargs.duration`, `countdown`, …). */
export function withField<E extends Error>(error: E, field: string): E & { field: string } {
  return Object.assign(error, { field });
}

export function hasCode(error: unknown, code: string): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === code;
}
