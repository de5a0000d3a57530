/**
 * Every Redis key Conveyor uses, built in one place. No service concatenates
 * a key by hand; the dashboard and the archiver read what this module names.
 */
import { TaskStates, type TaskState } from '../states.js';

export interface RedisKeys {
  /** Hash: one task's record (fields in TaskRecord). */
  task(id: string): string;
  /**
   * List of task ids, newest first (pushed when the record is created);
   * entries leave from the tail once their record is gone or older than the
   * result TTL. Readers skip an id whose record has just been removed.
   */
  readonly timeIndex: string;
  /**
   * Task ids in `state`. PENDING, RECEIVED, STARTED, RETRY: a sorted set
   * scored by the time the task entered the state (ms). SUCCESS, FAILURE,
   * REVOKED: a list, newest first, trimmed like the time index (a terminal
   * state never changes, so a list keeps the order for a third of the bytes).
   */
  stateIndex(state: TaskState): string;
  /** The state indexes in TaskStates order, as the transition script expects them. */
  readonly stateIndexes: readonly string[];
  /** Stream of transitions (id, state, at), capped, for live views. */
  readonly events: string;
  /** Pub/sub channel announcing each terminal transition as "<id> <state>[ <record>]" (transition.lua). */
  readonly finished: string;
  /** Pub/sub channel of control messages to workers (JSON, see worker control). */
  readonly control: string;
  /** Counter of deliveries of a task that were redeliveries (poison-message detection). */
  redeliveries(id: string): string;
  /** Hash of a task's side effects already done, by effect key (idempotent handlers). */
  effects(id: string): string;
  /** List of a task's attempt errors, oldest first (JSON). */
  attemptErrors(id: string): string;
  /** String: the task id an Idempotency-Key maps to, and the hash of the request body. */
  idempotency(key: string): string;
  /** Hash of per-state counters for one minute (`minute` = epoch ms / 60000). */
  minuteStats(minute: number): string;
  /** Hash: one worker's heartbeat record; expires when the worker stops beating. */
  worker(name: string): string;
  /** Sorted set of worker names by last heartbeat (ms); stale entries mean offline workers. */
  readonly workers: string;
  /** Glob matching every key of this prefix (for tests and tooling). */
  readonly all: string;
}

export function redisKeys(prefix: string): RedisKeys {
  const stateIndex = (state: TaskState) => `${prefix}:state:${state}`;
  return Object.freeze({
    task: (id: string) => `${prefix}:task:${id}`,
    timeIndex: `${prefix}:tasks`,
    stateIndex,
    stateIndexes: Object.freeze(TaskStates.map(stateIndex)),
    events: `${prefix}:events`,
    finished: `${prefix}:finished`,
    control: `${prefix}:control`,
    redeliveries: (id: string) => `${prefix}:task:${id}:redeliveries`,
    effects: (id: string) => `${prefix}:task:${id}:effects`,
    attemptErrors: (id: string) => `${prefix}:task:${id}:errors`,
    idempotency: (key: string) => `${prefix}:idempotency:${key}`,
    minuteStats: (minute: number) => `${prefix}:stats:${minute}`,
    worker: (name: string) => `${prefix}:worker:${name}`,
    workers: `${prefix}:workers`,
    all: `${prefix}:*`,
  });
}
