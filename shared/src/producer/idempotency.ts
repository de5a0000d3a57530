/**
 * Idempotency keys: a client that sends the same submission twice under the
 * same key (a retry after a timeout, a double click) gets the same task once.
 *
 * One Redis string per key, `keys.idempotency(key)`, remembered for
 * RESULT_TTL_SECONDS from the first request:
 *
 *   "<sha256> <id>"              claimed: the first request is submitting task <id>
 *   "<sha256> <id> <accepted>"   done: <accepted> is the JSON of the 202 it answered
 *
 * <sha256> is the hash of the submission's canonical JSON, so a different body
 * under a used key is a 409 (CNV_IDEMPOTENCY_CONFLICT), never a silent replay.
 *
 * The claim is a SET NX: of two concurrent requests exactly one writes it and
 * submits; the other polls until the value says "done" and replays it. The
 * replay therefore only ever carries an id whose message the broker confirmed.
 * A submission that fails (503) releases its claim, compare-and-delete, so the
 * client's retry can succeed. A claim that stays unfinished for STALE_CLAIM_MS
 * belongs to a process that died mid-request: if its task record exists, that
 * task is the answer; if not, nothing was written and the next request takes
 * the claim over (compare-and-set) and submits afresh.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { Errors, withField } from '../errors.js';
import {
  CONFIRM_TIMEOUT_MS,
  prepareSubmission,
  submitPrepared,
  type Accepted,
  type SubmitContext,
  type Submission,
} from './submit-task.js';
import { storeUnavailable } from './store-errors.js';

/** The name of the HTTP header, also the `field` of its 400s. */
export const IDEMPOTENCY_HEADER = 'Idempotency-Key';
export const IDEMPOTENCY_KEY_MAX_LENGTH = 200;
/** Printable ASCII, spaces inside allowed (HTTP strips them at the ends). */
const KEY_PATTERN = /^[\x20-\x7e]+$/;

/**
 * How long a claim may stay unfinished before it counts as abandoned. A live
 * request finishes within its Redis write plus the confirm timeout; the margin
 * covers a slow event loop. Measured on Redis's clock (the key's PTTL), so
 * api hosts with skewed clocks agree.
 */
export const STALE_CLAIM_MS = CONFIRM_TIMEOUT_MS + 5000;
/** How often a request waiting on a concurrent one looks again. */
const POLL_MS = 20;

export interface IdempotentSubmitContext extends SubmitContext {
  /** A client on the store's Redis (fail-fast in the api, like the store's). */
  redis: Redis;
  /** How long a key is remembered, in seconds: RESULT_TTL_SECONDS. */
  ttlSeconds: number;
}

export interface IdempotentOutcome {
  accepted: Accepted;
  /** true when this request did not submit anything and answers with an earlier request's task. */
  replayed: boolean;
}

/** Throws CNV_INVALID_IDEMPOTENCY_KEY (field `Idempotency-Key`) unless `key` is 1..200 printable characters. */
export function checkIdempotencyKey(key: string): void {
  let problem: string | undefined;
  if (key.length === 0) problem = 'must not be empty';
  else if (key.length > IDEMPOTENCY_KEY_MAX_LENGTH)
    problem = `must be at most ${IDEMPOTENCY_KEY_MAX_LENGTH} characters`;
  else if (!KEY_PATTERN.test(key)) problem = 'must contain printable ASCII characters only';
  if (problem) throw withField(new Errors.INVALID_IDEMPOTENCY_KEY(problem), IDEMPOTENCY_HEADER);
}

/**
 * JSON with object keys sorted at every level and no whitespace: two
 * submissions that differ only in key order or formatting compare equal.
 * Undefined properties are dropped, as JSON.stringify drops them.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value))
    return `[${value.map((item) => canonicalJson(item === undefined ? null : item)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** SHA-256 (hex) of the submission's canonical JSON. */
export function submissionHash(submission: Submission): string {
  return createHash('sha256').update(canonicalJson(submission)).digest('hex');
}

interface Entry {
  hash: string;
  id: string;
  /** Set once the claiming request got its confirm. */
  accepted: Accepted | null;
}

export function parseEntry(value: string): Entry | null {
  const first = value.indexOf(' ');
  if (first <= 0) return null;
  const second = value.indexOf(' ', first + 1);
  const hash = value.slice(0, first);
  const id = second < 0 ? value.slice(first + 1) : value.slice(first + 1, second);
  if (second < 0) return { hash, id, accepted: null };
  try {
    return { hash, id, accepted: JSON.parse(value.slice(second + 1)) as Accepted };
  } catch {
    return null;
  }
}

// Compare-and-delete / compare-and-set: only the request that owns a claim may release or finish it.
const RELEASE_LUA = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";
const FINISH_LUA =
  "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL') return 1 end return 0";
const TAKE_OVER_LUA =
  "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) return 1 end return 0";

/**
 * Submits `submission` once per `key`: the first request submits, later ones
 * with the same body get the same task (`replayed: true`), later ones with a
 * different body get CNV_IDEMPOTENCY_CONFLICT. Validation errors (400) come
 * first and never touch the key.
 */
export async function submitIdempotent(
  context: IdempotentSubmitContext,
  key: string,
  submission: Submission,
  now = Date.now(),
): Promise<IdempotentOutcome> {
  checkIdempotencyKey(key);
  const prepared = prepareSubmission(context, submission, now);
  const hash = submissionHash(submission);
  const redisKey = context.store.keys.idempotency(key);
  const { redis, ttlSeconds } = context;

  const submitClaimed = async (claim: string, id: string): Promise<IdempotentOutcome> => {
    let accepted: Accepted;
    try {
      accepted = await submitPrepared(context, prepared, id);
    } catch (error) {
      // Nothing was queued: free the key so the client's retry can succeed.
      await redis.eval(RELEASE_LUA, 1, redisKey, claim).catch((releaseError: unknown) => {
        // Redis is gone: the claim turns stale after STALE_CLAIM_MS and is then taken over.
        context.logger.warn({ err: releaseError, taskId: id }, 'could not release the idempotency key');
      });
      throw error;
    }
    await redis.eval(FINISH_LUA, 1, redisKey, claim, `${claim} ${JSON.stringify(accepted)}`).catch((e: unknown) => {
      // The task is queued; replays find its record once the claim is stale.
      context.logger.warn({ err: e, taskId: id }, 'could not record the idempotency key as done');
    });
    return { accepted, replayed: false };
  };

  // Bounded: a claim is either finished, released or stale within STALE_CLAIM_MS.
  const deadline = Date.now() + STALE_CLAIM_MS + 5000;
  for (;;) {
    const id = randomUUID();
    const claim = `${hash} ${id}`;
    const set = await store(redis.set(redisKey, claim, 'EX', ttlSeconds, 'NX'));
    if (set === 'OK') return submitClaimed(claim, id);

    const value = await store(redis.get(redisKey));
    if (value !== null) {
      const entry = parseEntry(value);
      if (entry === null) throw new Error(`unreadable idempotency entry under ${redisKey}`);
      if (entry.hash !== hash) throw new Errors.IDEMPOTENCY_CONFLICT(entry.id);
      if (entry.accepted !== null) return { accepted: entry.accepted, replayed: true };

      const pttl = await store(redis.pttl(redisKey));
      if (pttl >= 0 && ttlSeconds * 1000 - pttl > STALE_CLAIM_MS) {
        const record = await store(context.store.get(entry.id));
        if (record !== null) {
          const accepted: Accepted = {
            id: record.id,
            type: record.type,
            queue: record.queue,
            state: 'PENDING',
            eta: record.eta,
            expires: record.expires,
          };
          await redis.eval(FINISH_LUA, 1, redisKey, value, `${value} ${JSON.stringify(accepted)}`).catch(() => 0);
          return { accepted, replayed: true };
        }
        // The claimant died before writing anything: nothing of it can run, so submit afresh.
        const taken = await store(redis.eval(TAKE_OVER_LUA, 1, redisKey, value, claim, ttlSeconds));
        if (taken === 1) return submitClaimed(claim, id);
        continue;
      }
    }
    if (Date.now() >= deadline) throw new Errors.IDEMPOTENCY_IN_PROGRESS();
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

async function store<T>(promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (error) {
    throw storeUnavailable(error);
  }
}
