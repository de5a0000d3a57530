/**
 * A task's attempt history: one entry per attempt that ended in an error
 * (each RETRY, and the final FAILURE), oldest first, in the list
 * `keys.attemptErrors(id)`, which expires with the task's result.
 */
import type { Redis } from 'ioredis';
import type { RedisKeys } from './keys.js';

export interface AttemptError {
  /** 1 on the first run, n+1 after n retries. */
  attempt: number;
  error: string;
  errorCode: string;
  /** ISO-8601: when the attempt failed. */
  at: string;
  /** ISO-8601: when the next attempt was due (the retry's eta); absent on the final failure. */
  retryAt?: string;
}

/** Longest error message kept per attempt (the task hash keeps the last one's traceback). */
const MAX_ERROR_CHARS = 2000;

/** Appends one attempt's error and (re)sets the list's expiry to the result TTL. */
export async function recordAttemptError(
  redis: Redis,
  keys: RedisKeys,
  id: string,
  entry: AttemptError,
  ttlSeconds: number,
): Promise<void> {
  const key = keys.attemptErrors(id);
  const value = JSON.stringify({ ...entry, error: entry.error.slice(0, MAX_ERROR_CHARS) });
  await redis.multi().rpush(key, value).expire(key, ttlSeconds).exec();
}

/**
 * The attempt errors of task `id`, oldest first; [] when there are none (or
 * they expired). If an attempt was recorded twice (a worker died between
 * recording it and acking its message), the later record wins.
 */
export async function readAttemptErrors(redis: Redis, keys: RedisKeys, id: string): Promise<AttemptError[]> {
  const raw = await redis.lrange(keys.attemptErrors(id), 0, -1);
  const byAttempt = new Map<number, AttemptError>();
  for (const item of raw) {
    const entry = parseEntry(item);
    if (entry) byAttempt.set(entry.attempt, entry);
  }
  return [...byAttempt.values()].sort((a, b) => a.attempt - b.attempt);
}

function parseEntry(text: string): AttemptError | null {
  try {
    const value = JSON.parse(text) as Partial<AttemptError>;
    if (typeof value.attempt !== 'number') return null;
    const entry: AttemptError = {
      attempt: value.attempt,
      error: String(value.error ?? ''),
      errorCode: String(value.errorCode ?? ''),
      at: String(value.at ?? ''),
    };
    if (typeof value.retryAt === 'string') entry.retryAt = value.retryAt;
    return entry;
  } catch {
    return null;
  }
}
