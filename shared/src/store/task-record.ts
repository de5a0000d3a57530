/**
 * The task record as stored in the Redis hash and as the api returns it.
 * Hash values are strings; JSON-valued fields (args, kwargs, result) are
 * parsed here and nowhere else.
 */
import type { TaskState } from '../states.js';

export interface TaskRecord {
  id: string;
  type: string;
  queue: string;
  state: TaskState;
  args: unknown[];
  kwargs: Record<string, unknown>;
  result: unknown;
  error: string | null;
  errorCode: string | null;
  traceback: string | null;
  /** Attempts started so far (0 while PENDING). */
  attempts: number;
  worker: string | null;
  /** Percent (0–100) the handler last reported (context.progress). */
  progress: number | null;
  /** The message that came with the last progress report, if any. */
  progressMessage: string | null;
  /** ISO-8601 timestamps. */
  created: string | null;
  eta: string | null;
  expires: string | null;
  received: string | null;
  started: string | null;
  finished: string | null;
  /** Seconds the handler ran in its last attempt. */
  runtime: number | null;
}

/**
 * What a JSON-valued field means when the hash has no such field. The store
 * leaves a field out when its value is this default (no args, no kwargs, a
 * null result): a finished record lives for the whole result TTL, and each
 * absent field saves its bytes there.
 */
const JSON_FIELD_DEFAULTS: ReadonlyMap<string, string> = new Map([
  ['args', '[]'],
  ['kwargs', '{}'],
  ['result', 'null'],
]);

/** True when `value` of `field` need not be stored: reading the record without it gives the same. */
export function isStoredDefault(field: string, value: string): boolean {
  return JSON_FIELD_DEFAULTS.get(field) === value;
}

export function parseTaskRecord(id: string, hash: Record<string, string>): TaskRecord | null {
  if (!hash.state) return null;
  return {
    id,
    type: hash.type ?? '',
    queue: hash.queue ?? '',
    state: hash.state as TaskState,
    args: json(hash, 'args') as unknown[],
    kwargs: json(hash, 'kwargs') as Record<string, unknown>,
    result: json(hash, 'result'),
    error: hash.error ?? null,
    errorCode: hash.errorCode ?? null,
    traceback: hash.traceback ?? null,
    attempts: Number(hash.attempts ?? 0),
    worker: hash.worker ?? null,
    progress: hash.progress === undefined ? null : Number(hash.progress),
    progressMessage: hash.progressMessage ?? null,
    created: iso(hash.created),
    eta: hash.eta ?? null,
    expires: hash.expires ?? null,
    received: iso(hash.received),
    started: iso(hash.started),
    finished: iso(hash.finished),
    runtime: hash.runtime === undefined ? null : Number(hash.runtime),
  };
}

function json(hash: Record<string, string>, field: 'args' | 'kwargs' | 'result'): unknown {
  return JSON.parse(hash[field] ?? JSON_FIELD_DEFAULTS.get(field)!);
}

function iso(ms: string | undefined): string | null {
  return ms === undefined ? null : new Date(Number(ms)).toISOString();
}
