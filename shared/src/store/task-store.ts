/**
 * The result backend: task records and their indexes in Redis. Every state
 * change is one Lua script call (one round trip, atomic with its indexes);
 * with ioredis auto-pipelining the calls of concurrent tasks share a round
 * trip. Negative script codes become typed outcomes, never silent no-ops.
 */
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import type { TaskState } from '../states.js';
import { redisKeys, type RedisKeys } from './keys.js';
import { parseTaskRecord, type TaskRecord } from './task-record.js';

const luaDir = new URL('../../lua/', import.meta.url);
const lua = (name: string) => readFileSync(new URL(name, luaDir), 'utf8');

/** Bound of the event stream: enough for live views, constant memory. */
const MAX_EVENTS = 10_000;
const TRANSITION_KEYS = 4 + 7;

export type FieldValues = Record<string, string | number>;

export type TransitionOutcome =
  | { applied: true; state: TaskState }
  /** The task is already SUCCESS, FAILURE or REVOKED. */
  | { applied: false; reason: 'terminal'; state: TaskState }
  /** The event is older than what the store has (a duplicate or late delivery). */
  | { applied: false; reason: 'behind'; state: TaskState }
  /** The store has no record and the caller gave no identity fields. */
  | { applied: false; reason: 'unknown'; state: null };

interface ScriptedRedis extends Redis {
  conveyorTransition(...args: (string | number)[]): Promise<[number, string]>;
  conveyorDiscardPending(...args: string[]): Promise<number>;
}

export interface TaskStoreOptions {
  prefix: string;
  resultTtlSeconds: number;
}

export class TaskStore {
  readonly keys: RedisKeys;
  readonly #redis: ScriptedRedis;
  readonly #ttl: number;

  constructor(redis: Redis, options: TaskStoreOptions) {
    this.keys = redisKeys(options.prefix);
    this.#ttl = options.resultTtlSeconds;
    redis.defineCommand('conveyorTransition', { numberOfKeys: TRANSITION_KEYS, lua: lua('transition.lua') });
    redis.defineCommand('conveyorDiscardPending', { numberOfKeys: 3, lua: lua('discard-pending.lua') });
    this.#redis = redis as ScriptedRedis;
  }

  /**
   * Moves task `id` to `state` for `attempt`, writing `fields`; `identity`
   * fields are written only if absent (a task first seen by a worker).
   */
  async transition(
    id: string,
    state: TaskState,
    attempt: number,
    fields: FieldValues,
    identity?: FieldValues,
    now = Date.now(),
  ): Promise<TransitionOutcome> {
    const k = this.keys;
    const args: (string | number)[] = [
      k.task(id),
      k.timeIndex,
      k.events,
      k.minuteStats(Math.floor(now / 60_000)),
      ...k.stateIndexes,
      id,
      state,
      attempt,
      now,
      this.#ttl,
      MAX_EVENTS,
      0,
    ];
    let pairs = 0;
    for (const field in fields) {
      args.push(field, fields[field]!);
      pairs++;
    }
    args[TRANSITION_KEYS + 6] = pairs;
    if (identity) for (const field in identity) args.push(field, identity[field]!);
    const [code, current] = await this.#redis.conveyorTransition(...args);
    switch (code) {
      case 1:
        return { applied: true, state: current as TaskState };
      case -1:
        return { applied: false, reason: 'terminal', state: current as TaskState };
      case -2:
        return { applied: false, reason: 'behind', state: current as TaskState };
      case -3:
        return { applied: false, reason: 'unknown', state: null };
      default:
        throw new Error(`transition.lua returned unknown code ${code}`);
    }
  }

  /** Removes a PENDING record whose message never reached the broker. */
  async discardPending(id: string): Promise<boolean> {
    const k = this.keys;
    return (await this.#redis.conveyorDiscardPending(k.task(id), k.timeIndex, k.stateIndex('PENDING'), id)) === 1;
  }

  async get(id: string): Promise<TaskRecord | null> {
    return parseTaskRecord(id, await this.#redis.hgetall(this.keys.task(id)));
  }
}
