/**
 * Progress of a running task: `progress` (percent, 0–100) and
 * `progressMessage` in the task hash, written by progress.lua only while the
 * task is not terminal, so a report that arrives after the outcome never
 * changes a finished record.
 */
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import type { RedisKeys } from './keys.js';

const script = readFileSync(new URL('../../lua/progress.lua', import.meta.url), 'utf8');

/** Longest progress message kept; a handler's log line belongs in the log, not the record. */
export const MAX_PROGRESS_MESSAGE_CHARS = 500;

export type ProgressOutcome = 'written' | 'terminal' | 'unknown';

interface ProgressRedis extends Redis {
  conveyorProgress(key: string, progress: string, message: string): Promise<number>;
}

/**
 * Writes task `id`'s progress. `percent` is clamped to 0–100 and rounded to
 * 0.1; `message` is truncated to MAX_PROGRESS_MESSAGE_CHARS.
 */
export async function writeTaskProgress(
  redis: Redis,
  keys: RedisKeys,
  id: string,
  percent: number,
  message?: string,
): Promise<ProgressOutcome> {
  if (!Number.isFinite(percent)) throw new RangeError(`progress must be a finite number, got ${percent}`);
  const scripted = redis as ProgressRedis;
  // defineCommand once per client: ioredis then sends EVALSHA and loads the script on NOSCRIPT.
  if (typeof scripted.conveyorProgress !== 'function') {
    redis.defineCommand('conveyorProgress', { numberOfKeys: 1, lua: script });
  }
  const value = Math.round(Math.min(100, Math.max(0, percent)) * 10) / 10;
  const text = (message ?? '').slice(0, MAX_PROGRESS_MESSAGE_CHARS);
  const code = await scripted.conveyorProgress(keys.task(id), String(value), text);
  return code === 1 ? 'written' : code === 0 ? 'terminal' : 'unknown';
}
