/** Small HTTP client for end-to-end tests: submit, poll, bounded concurrency. */
import { waitFor } from '../support/wait.js';

export interface Submitted {
  status: number;
  id: string;
  location: string | null;
  body: Record<string, unknown>;
}

export async function submit(apiUrl: string, body: unknown): Promise<Submitted> {
  const response = await fetch(`${apiUrl}/api/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await response.json()) as Record<string, unknown>;
  return { status: response.status, id: String(json.id), location: response.headers.get('location'), body: json };
}

export type TaskView = Record<string, unknown> & { state: string; result: unknown; error: string | null };

export async function getTask(apiUrl: string, id: string): Promise<TaskView> {
  const response = await fetch(`${apiUrl}/api/tasks/${id}`);
  if (response.status !== 200) throw new Error(`GET task ${id}: ${response.status}`);
  return (await response.json()) as TaskView;
}

const TERMINAL = new Set(['SUCCESS', 'FAILURE', 'REVOKED']);

/** Polls until the task is terminal (bounded). */
export async function waitForTerminal(apiUrl: string, id: string, timeoutMs = 30_000): Promise<TaskView> {
  return waitFor(
    async () => {
      const task = await getTask(apiUrl, id);
      return TERMINAL.has(task.state) ? task : null;
    },
    { timeoutMs, intervalMs: 50, message: `task ${id} to finish` },
  );
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapConcurrent<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await fn(items[index]!);
      }
    }),
  );
  return results;
}
