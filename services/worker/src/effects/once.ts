/**
 * Idempotent side effects for handlers: `context.once(effectKey, fn)` runs
 * `fn` at most once per task, across retries and redeliveries, and returns
 * its (JSON) result to every later call with the same key.
 *
 * State lives in the hash `keys.effects(id)` (expires with the result), one
 * field per effect key:
 *
 *   {"state":"claimed","at":ms,"by":"<worker> attempt <n>"}   while fn runs
 *   {"state":"done","at":ms,"result":<JSON>}                   once it succeeded
 *
 *   1. HSETNX claims the key. Whoever wins runs fn, then records "done".
 *   2. fn throws: the claim is removed, so a retry may try the effect again
 *      (it failed, so it did not happen, as far as anyone can tell).
 *   3. The key is "done": fn is not run; the stored result is returned.
 *   4. The key is "claimed" by an earlier delivery that never recorded an
 *      outcome: that worker died (or lost its broker connection) after
 *      claiming and before recording "done", so the effect may or may not
 *      have happened. This is the window no claim scheme can close without
 *      the far side's help. The default is at-most-once: the task fails with
 *      CNV_EFFECT_UNCERTAIN (not retried), because for an email, a charge or
 *      a webhook a duplicate is worse than a failure an operator can see and
 *      settle. An effect that is safe to repeat (the far side deduplicates on
 *      a key, as SMTP receivers can on our stable Message-ID) can pass
 *      `{ ifUncertain: 'rerun' }` to take the claim over and run again.
 */
import { Errors, type RedisKeys } from '@conveyor/shared';
import type { Redis } from 'ioredis';

export interface OnceOptions {
  /** What to do when an earlier delivery claimed the effect and never finished it (default 'fail'). */
  ifUncertain?: 'fail' | 'rerun';
}

export interface EffectScope {
  redis: Redis;
  keys: RedisKeys;
  taskId: string;
  /** Who claims: shown in the claim record for an operator. */
  owner: string;
  ttlSeconds: number;
}

type EffectRecord = { state: 'claimed'; at: number; by: string } | { state: 'done'; at: number; result: unknown };

const MAX_EFFECT_KEY_CHARS = 200;

export async function runOnce<T>(
  scope: EffectScope,
  effectKey: string,
  fn: () => T | Promise<T>,
  options: OnceOptions = {},
): Promise<T> {
  if (effectKey === '' || effectKey.length > MAX_EFFECT_KEY_CHARS) {
    throw new RangeError(`effect key must be 1 to ${MAX_EFFECT_KEY_CHARS} characters`);
  }
  const { redis, keys, taskId, owner, ttlSeconds } = scope;
  const hash = keys.effects(taskId);
  const claim = JSON.stringify({ state: 'claimed', at: Date.now(), by: owner } satisfies EffectRecord);
  const [claimed] = await execOrThrow(redis.multi().hsetnx(hash, effectKey, claim).expire(hash, ttlSeconds));

  if (claimed !== 1) {
    const existing = parseRecord(await redis.hget(hash, effectKey));
    if (existing?.state === 'done') return existing.result as T;
    if (existing !== null && options.ifUncertain !== 'rerun') throw new Errors.EFFECT_UNCERTAIN(effectKey);
    // 'rerun', or the claim vanished between the two calls (its owner's fn failed): take it over.
    await redis.hset(hash, effectKey, claim);
  }

  let result: T;
  try {
    result = await fn();
  } catch (error) {
    await redis.hdel(hash, effectKey).catch(() => undefined);
    throw error;
  }
  await redis.hset(hash, effectKey, JSON.stringify({ state: 'done', at: Date.now(), result: jsonable(result) }));
  return result;
}

/** The result as stored: JSON-serialisable values as they are, anything else as null. */
function jsonable(value: unknown): unknown {
  try {
    return JSON.parse(JSON.stringify(value ?? null)) as unknown;
  } catch {
    return null;
  }
}

function parseRecord(text: string | null): EffectRecord | null {
  if (text === null) return null;
  try {
    const value = JSON.parse(text) as Partial<EffectRecord>;
    return value.state === 'done' || value.state === 'claimed' ? (value as EffectRecord) : null;
  } catch {
    return null;
  }
}

async function execOrThrow(multi: ReturnType<Redis['multi']>): Promise<unknown[]> {
  const replies = (await multi.exec()) ?? [];
  return replies.map(([error, value]) => {
    if (error) throw error;
    return value;
  });
}
