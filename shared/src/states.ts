/**
 * The closed set of task states and their precedence. The Lua transition
 * script enforces the same order (lua/transition.lua keeps a copy of RANK);
 * a unit test checks that the two agree.
 */
export const TaskStates = ['PENDING', 'RECEIVED', 'STARTED', 'RETRY', 'SUCCESS', 'FAILURE', 'REVOKED'] as const;
export type TaskState = (typeof TaskStates)[number];

export const TerminalStates: ReadonlySet<TaskState> = new Set(['SUCCESS', 'FAILURE', 'REVOKED']);

/**
 * Within one attempt a task only moves up this ladder; a new attempt (after
 * RETRY, or a redelivery after a crash) starts again at RECEIVED. Terminal
 * states share the top rung: none of them ever changes again.
 */
export const StateRank: Readonly<Record<TaskState, number>> = {
  PENDING: 0,
  RECEIVED: 1,
  STARTED: 2,
  RETRY: 3,
  SUCCESS: 4,
  FAILURE: 4,
  REVOKED: 4,
};

export function isTerminal(state: TaskState): boolean {
  return TerminalStates.has(state);
}
