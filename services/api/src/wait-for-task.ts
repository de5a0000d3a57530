/**
 * The long-poll behind `GET /api/tasks/:id?wait=N`: read the record until it
 * is terminal, the wait is over, or the caller gives up. Polling keeps it
 * stateless and costs one HGETALL per interval per waiting client; a blocking
 * read of the event stream would need a Redis connection per waiter.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { isTerminal, type TaskRecord, type TaskStore } from '@conveyor/shared';
import { storeUnavailable } from './store-errors.js';

/** Short enough to add little latency to a finished task, long enough to keep Redis load per waiter low. */
export const POLL_INTERVAL_MS = 25;

/** The record (null if there is none), terminal unless the wait ran out or `signal` aborted it. */
export async function waitForTask(
  store: Pick<TaskStore, 'get'>,
  id: string,
  waitMs: number,
  signal?: AbortSignal,
): Promise<TaskRecord | null> {
  const deadline = Date.now() + waitMs;
  let record = await read(store, id);
  while (record !== null && !isTerminal(record.state) && !signal?.aborted) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    await delay(Math.min(POLL_INTERVAL_MS, left), undefined, { signal }).catch(() => undefined);
    record = await read(store, id);
  }
  return record;
}

async function read(store: Pick<TaskStore, 'get'>, id: string): Promise<TaskRecord | null> {
  try {
    return await store.get(id);
  } catch (error) {
    throw storeUnavailable(error);
  }
}
