/** HTTP helpers of the fault suite on top of test/e2e/http.ts: readiness, revoke, waiting for many tasks. */
import { getTask, mapConcurrent, type TaskView } from '../e2e/http.js';
import { waitFor } from '../support/wait.js';

export { getTask, mapConcurrent, submit, waitForTerminal, type TaskView } from '../e2e/http.js';

const TERMINAL = new Set(['SUCCESS', 'FAILURE', 'REVOKED']);

/** GET /ready of a role: true on 200; false on anything else, including no answer within a second. */
export async function isReady(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/ready`, { signal: AbortSignal.timeout(1000) });
    await response.body?.cancel();
    return response.status === 200;
  } catch {
    return false;
  }
}

/** Resolves with the ms it took until `GET /ready` of `url` answered `ready` (bounded). */
export async function waitForReadiness(url: string, ready: boolean, timeoutMs = 60_000): Promise<number> {
  const started = Date.now();
  await waitFor(async () => (await isReady(url)) === ready, {
    timeoutMs,
    intervalMs: 100,
    message: `${url}/ready to be ${ready}`,
  });
  return Date.now() - started;
}

export async function revoke(apiUrl: string, id: string, body?: object): Promise<{ status: number; body: TaskView }> {
  const response = await fetch(`${apiUrl}/api/tasks/${id}/revoke`, {
    method: 'POST',
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as TaskView };
}

/**
 * Polls until every task is terminal (bounded) and resolves with their
 * records, in the order of `ids`. A task that does not exist counts as
 * not terminal.
 */
export async function waitAllTerminal(
  apiUrl: string,
  ids: readonly string[],
  timeoutMs = 120_000,
): Promise<TaskView[]> {
  let views: (TaskView | null)[] = [];
  await waitFor(
    async () => {
      views = await mapConcurrent(ids, 32, (id) => getTask(apiUrl, id).catch(() => null));
      return views.every((view) => view !== null && TERMINAL.has(view.state));
    },
    {
      timeoutMs,
      intervalMs: 500,
      message: () => {
        const open = views.filter((v) => v === null || !TERMINAL.has(v.state));
        const states = open.map((v) => v?.state ?? 'missing');
        return `all ${ids.length} tasks to be terminal (${open.length} not: ${[...new Set(states)].join(', ')})`;
      },
    },
  );
  return views as TaskView[];
}

/** Counts of each value. */
export function tally<T>(values: readonly T[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[String(value)] = (counts[String(value)] ?? 0) + 1;
  return counts;
}
