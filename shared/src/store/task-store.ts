/**
 * The result backend: task records and their indexes in Redis. Every state
 * change goes through transition.lua, atomic with its indexes.
 *
 * Transitions are group-committed: at most one script call is in flight per
 * store, and everything requested meanwhile (the starts and finishes of many
 * concurrent tasks) goes out as the next call. That call leaves in the turn
 * after the previous one answers, once that call's callers have run: what
 * they request in reaction (a started task's outcome, the start of the task
 * that takes its slot) rides along instead of waiting a whole call more. At
 * low load a transition leaves at once; under load each round trip carries
 * as many as arrived during the last one, so the number of calls, writes and
 * script entries grows far slower than the task rate. Negative script codes
 * become typed outcomes, never silent no-ops.
 */
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import type { TaskState } from '../states.js';
import { redisKeys, type RedisKeys } from './keys.js';
import { isStoredDefault, parseTaskRecord, type TaskRecord } from './task-record.js';

const luaDir = new URL('../../lua/', import.meta.url);
const lua = (name: string) => readFileSync(new URL(name, luaDir), 'utf8');

/**
 * Bound of the event stream, in entries (one per script call, holding up to
 * MAX_BATCH events): enough for live views, constant memory.
 */
const MAX_EVENT_ENTRIES = 200;
/** Transitions per script call: bounds how long one call holds Redis. */
const MAX_BATCH = 256;

export type FieldValues = Record<string, string | number>;

export type TransitionOutcome =
  | { applied: true; state: TaskState }
  /** The task is already SUCCESS, FAILURE or REVOKED. */
  | { applied: false; reason: 'terminal'; state: TaskState }
  /** The event is older than what the store has (a duplicate or late delivery). */
  | { applied: false; reason: 'behind'; state: TaskState }
  /** The store has no record and the caller gave no identity fields. */
  | { applied: false; reason: 'unknown'; state: null };

/**
 * The script command of transitions. Its calls are batched here already, so
 * clients leave it out of ioredis auto-pipelining (redis.ts): a second
 * batching layer would hold each call back another event-loop turn and wrap
 * it in a pipeline of one, and the Map and Set entries ioredis keeps per
 * pipeline, churning at the task rate, kept finished tasks alive past the
 * young generation (see the worker's running-tasks.ts).
 */
export const TRANSITION_COMMAND = 'conveyorTransition';

interface ScriptedRedis extends Redis {
  [TRANSITION_COMMAND](numKeys: number, ...args: (string | number)[]): Promise<(number | string)[]>;
  conveyorDiscardPending(...args: string[]): Promise<number>;
}

/** One transition as transition.lua reads it: [id, state, attempt, now, fields, identity or 0]. */
type TransitionTuple = [string, TaskState, number, number, string[], string[] | 0];

interface QueuedTransition {
  key: string;
  tuple: TransitionTuple;
  resolve(outcome: TransitionOutcome): void;
  reject(error: unknown): void;
}

export interface TaskStoreOptions {
  prefix: string;
  resultTtlSeconds: number;
}

export class TaskStore {
  readonly keys: RedisKeys;
  readonly #redis: ScriptedRedis;
  readonly #ttl: number;
  #queued: QueuedTransition[] = [];
  /** Script calls sent and not yet answered (at most one, but for MAX_BATCH splits). */
  #inFlight = 0;
  #flushScheduled = false;

  constructor(redis: Redis, options: TaskStoreOptions) {
    this.keys = redisKeys(options.prefix);
    this.#ttl = options.resultTtlSeconds;
    redis.defineCommand(TRANSITION_COMMAND, { lua: lua('transition.lua') });
    redis.defineCommand('conveyorDiscardPending', { numberOfKeys: 3, lua: lua('discard-pending.lua') });
    this.#redis = redis as ScriptedRedis;
  }

  /**
   * Moves task `id` to `state` for `attempt`, writing `fields`; `identity`
   * fields are written only if absent (a task first seen by a worker).
   */
  transition(
    id: string,
    state: TaskState,
    attempt: number,
    fields: FieldValues,
    identity?: FieldValues,
    now = Date.now(),
  ): Promise<TransitionOutcome> {
    const tuple: TransitionTuple = [id, state, attempt, now, pairsOf(fields), identity ? pairsOf(identity) : 0];
    return new Promise((resolve, reject) => {
      this.#queued.push({ key: this.keys.task(id), tuple, resolve, reject });
      this.#scheduleFlush();
    });
  }

  /** Removes a PENDING record whose message never reached the broker. */
  async discardPending(id: string): Promise<boolean> {
    const k = this.keys;
    return (await this.#redis.conveyorDiscardPending(k.task(id), k.timeIndex, k.stateIndex('PENDING'), id)) === 1;
  }

  async get(id: string): Promise<TaskRecord | null> {
    return parseTaskRecord(id, await this.#redis.hgetall(this.keys.task(id)));
  }

  /** Closes the Redis client the store was built on. */
  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }

  /** Collects what the current turn requests; sends it unless a call is still out. */
  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#inFlight > 0) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    const queued = this.#queued;
    if (queued.length === 0) return;
    this.#queued = [];
    for (let start = 0; start < queued.length; start += MAX_BATCH) this.#send(queued.slice(start, start + MAX_BATCH));
  }

  /** After the answered call's callers were settled, so their reactions join the next call. */
  #answered(): void {
    if (--this.#inFlight === 0) this.#scheduleFlush();
  }

  #send(batch: QueuedTransition[]): void {
    const k = this.keys;
    const now = Date.now();
    const keys: string[] = [k.timeIndex, k.events, k.minuteStats(Math.floor(now / 60_000)), ...k.stateIndexes];
    const tuples: TransitionTuple[] = [];
    for (const item of batch) {
      keys.push(item.key);
      tuples.push(item.tuple);
    }
    const argv = [this.#ttl, MAX_EVENT_ENTRIES, k.finished, now, JSON.stringify(tuples), k.task('')];
    this.#inFlight++;
    // Every item's own promise carries the outcome; this chain only routes it.
    void this.#redis[TRANSITION_COMMAND](keys.length, ...keys, ...argv).then(
      (results) => {
        batch.forEach((item, i) => {
          try {
            item.resolve(outcomeOf(results[2 * i] as number, results[2 * i + 1]));
          } catch (error) {
            item.reject(error);
          }
        });
        this.#answered();
      },
      (error: unknown) => {
        batch.forEach((item) => item.reject(error));
        this.#answered();
      },
    );
  }
}

/**
 * Field/value pairs as strings, so Redis stores exactly what the caller
 * formatted; values the record reads the same without are left out.
 */
function pairsOf(values: FieldValues): string[] {
  const pairs: string[] = [];
  for (const field in values) {
    const value = String(values[field]);
    if (!isStoredDefault(field, value)) pairs.push(field, value);
  }
  return pairs;
}

function outcomeOf(code: number, state: unknown): TransitionOutcome {
  switch (code) {
    case 1:
      return { applied: true, state: state as TaskState };
    case -1:
      return { applied: false, reason: 'terminal', state: state as TaskState };
    case -2:
      return { applied: false, reason: 'behind', state: state as TaskState };
    case -3:
      return { applied: false, reason: 'unknown', state: null };
    default:
      throw new Error(`transition.lua returned unknown code ${code}`);
  }
}
