/**
 * Messages on the control channel (`keys.control`, Redis pub/sub) that every
 * worker listens to. JSON, one object per message:
 *
 *   {"type":"terminate","id":"<task id>"}   end that task now if this worker runs it:
 *                                           abort its signal, terminate its pool thread,
 *                                           record REVOKED (error "terminated", CNV_TASK_REVOKED)
 *
 * Pub/sub reaches only the workers listening at that moment, which is all a
 * terminate needs: a task that is not running anywhere is revoked in the
 * store instead, and a worker never starts a terminal task.
 */
import { TASK_ID_PATTERN } from '../protocol/celery-v2.js';

export type ControlMessage = { type: 'terminate'; id: string };

export function encodeControlMessage(message: ControlMessage): string {
  return JSON.stringify(message);
}

/** The message, or null when `text` is not one this version understands. */
export function parseControlMessage(text: string): ControlMessage | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const { type, id } = value as { type?: unknown; id?: unknown };
  if (type === 'terminate' && typeof id === 'string' && TASK_ID_PATTERN.test(id)) return { type, id };
  return null;
}
