/**
 * Fault 1, as the requirement states it: `kill -9` one of two workers while
 * 500 tasks run; every task ends in a terminal state, and the side effects
 * recorded by an idempotent test handler happen exactly once per task.
 *
 * worker-kill.test.ts runs the same fault with email.send, whose effect (an
 * SMTP send) cannot be exactly-once across a kill in mid-send. Here the tasks
 * are the test-only `test.record` (fixtures/record-task.mjs), run by real
 * worker processes that add it to the built-ins (fixtures/recording-worker.mjs).
 * Its effect is an entry appended to a Redis list in the same atomic script
 * that claims the task, so a redelivery after any kill point either finds
 * the effect recorded or records it itself, never twice and never not at all.
 * Each handler waits 20–50 ms before recording and 5–15 ms after, so the
 * kill lands with deliveries at every stage: not yet recorded, recorded but
 * not reported, reported but not acked.
 *
 * Submitted with the producer API (no api process). Asserted:
 *  - every task ends SUCCESS (the killed worker's unacked deliveries go back
 *    to the queue and the survivor runs them), and some were redelivered;
 *  - the effect log holds exactly one entry per task: 500 entries, each task
 *    once, no other; each entry matches the task's key, the claim hash, and
 *    the entry the task's result reports;
 *  - a task whose effect the killed worker had recorded reports
 *    `recorded: false` from its rerun, which is the idempotency at work.
 */
import { expect, it } from 'vitest';
import {
  builtinTaskTypes,
  createLogger,
  defineTaskType,
  loadConfig,
  Producer,
  redisKeys,
  TaskRegistry,
  type TaskRecord,
  type TaskType,
} from '@conveyor/shared';
import { startScript } from '../support/processes.js';
import { connectRedis, testEnv, useTestPrefix } from '../support/services.js';
import { waitFor } from '../support/wait.js';
import { mapConcurrent, tally } from './client.js';
import { summary } from './infra.js';

/** What fixtures/record-task.mjs exports (plain JS, so typed here). */
interface RecordTaskFixture {
  RECORD_TASK: Pick<TaskType, 'name' | 'description' | 'kwargs'>;
  recordKeys(prefix: string): { effects: string; log: string; runs: string };
}
/** One recorded effect, as the handler writes it. */
interface Effect {
  taskId: string;
  key: string;
  worker: string;
  attempt: number;
  at: number;
}

// Loaded at run time: a static import of a .mjs would need a declaration file for tsc.
const { RECORD_TASK, recordKeys } = (await import(
  new URL('./fixtures/record-task.mjs', import.meta.url).href
)) as RecordTaskFixture;
const WORKER_SCRIPT = 'test/faults/fixtures/recording-worker.mjs';

const prefix = useTestPrefix();
const TASKS = 500;
const CONCURRENCY = 8;
/** Deliveries a worker holds unacked (WORKER_PREFETCH_MULTIPLIER 2). */
const PREFETCH = CONCURRENCY * 2;
/** The victim is killed once this many tasks are terminal: mid-run, most of the work still ahead. */
const KILL_AFTER = 150;
const TERMINAL = ['SUCCESS', 'FAILURE', 'REVOKED'] as const;

it('kill -9 of one of two workers mid-run: every task SUCCESS, its recorded effect exactly once', async () => {
  const env = testEnv(prefix);
  const config = loadConfig('api', env);
  const registry = new TaskRegistry([...builtinTaskTypes, defineTaskType(RECORD_TASK)]);
  const producer = await Producer.connect(config, createLogger(config), registry);
  const redis = await connectRedis();
  try {
    const keys = recordKeys(prefix);
    const stateKeys = TERMINAL.map((state) => redisKeys(prefix).stateIndex(state));
    const terminalCount = async () => (await Promise.all(stateKeys.map((k) => redis.llen(k)))).reduce((a, b) => a + b);

    const names = { victim: `${prefix}-victim`, survivor: `${prefix}-survivor` };
    const workerEnv = (name: string) =>
      testEnv(prefix, {
        WORKER_CONCURRENCY: CONCURRENCY,
        WORKER_PREFETCH_MULTIPLIER: PREFETCH / CONCURRENCY,
        WORKER_NAME: name,
      });
    const [victim, survivor] = await Promise.all([
      startScript(WORKER_SCRIPT, workerEnv(names.victim)),
      startScript(WORKER_SCRIPT, workerEnv(names.survivor)),
    ]);

    // Submitted while both workers consume; the kill below does not wait for the submissions.
    const submitting = mapConcurrent(
      Array.from({ length: TASKS }, (_, i) => i),
      32,
      (i) => producer.submit({ type: RECORD_TASK.name, kwargs: { key: `key-${i}` } }),
    );

    const doneWhenKilled = await waitFor(
      async () => {
        const done = await terminalCount();
        return done >= KILL_AFTER ? done : 0;
      },
      { timeoutMs: 60_000, intervalMs: 10, message: `${KILL_AFTER} tasks to finish` },
    );
    const killedAt = Date.now();
    victim.signal('SIGKILL');
    const exit = await victim.waitForExit(10_000);
    expect(exit.signal).toBe('SIGKILL');
    expect(doneWhenKilled).toBeLessThan(TASKS - PREFETCH);

    const ids = (await submitting).map((accepted) => accepted.id);
    expect(new Set(ids).size).toBe(TASKS);
    let lastCount = 0;
    await waitFor(async () => (lastCount = await terminalCount()) >= TASKS, {
      timeoutMs: 60_000,
      intervalMs: 50,
      message: () => `all ${TASKS} tasks to be terminal (${lastCount} are)`,
    });
    const recoveryMs = Date.now() - killedAt;
    expect(survivor.exitStatus).toBeUndefined();

    const tasks = await mapConcurrent(ids, 32, async (id) => (await producer.get(id)) as TaskRecord);
    const [logged, claims, runs, redelivered] = await Promise.all([
      redis.lrange(keys.log, 0, -1),
      redis.hgetall(keys.effects),
      redis.hgetall(keys.runs),
      mapConcurrent(ids, 32, (id) => redis.exists(redisKeys(prefix).redeliveries(id))),
    ]);

    // Every task terminal, and SUCCESS: the victim's unacked deliveries ran on the survivor.
    expect(tally(tasks.map((t) => t.state))).toEqual({ SUCCESS: TASKS });

    // Exactly one effect per task: as many entries as tasks, each task once, nothing else.
    const effects = logged.map((entry) => JSON.parse(entry) as Effect);
    const effectsPerTask = tally(effects.map((e) => e.taskId));
    const submittedIds = new Set(ids);
    expect({
      duplicated: Object.keys(effectsPerTask).filter((id) => effectsPerTask[id]! > 1),
      missing: ids.filter((id) => effectsPerTask[id] === undefined),
      notSubmitted: Object.keys(effectsPerTask).filter((id) => !submittedIds.has(id)),
    }).toEqual({ duplicated: [], missing: [], notSubmitted: [] });
    expect(effects).toHaveLength(TASKS);
    expect(Object.keys(claims).sort()).toEqual([...ids].sort());

    const byTask = new Map(effects.map((e, i) => [e.taskId, { effect: e, raw: logged[i]! }]));
    const recordedBy = { victim: 0, survivor: 0 };
    const rerunsOfRecorded: string[] = [];
    tasks.forEach((task, i) => {
      const { effect, raw } = byTask.get(task.id)!;
      expect(effect.key, `effect of ${task.id}`).toBe(`key-${i}`);
      expect(claims[task.id], `claim of ${task.id}`).toBe(raw);
      expect([names.victim, names.survivor]).toContain(effect.worker);
      recordedBy[effect.worker === names.victim ? 'victim' : 'survivor'] += 1;
      // The result names the entry recorded for the task, whichever delivery recorded it.
      const result = task.result as { recorded: boolean; effect: Effect };
      expect(result.effect, `result of ${task.id}`).toEqual(effect);
      if (!result.recorded) {
        // Only a rerun on the survivor of a task whose effect the victim recorded before dying.
        expect({ finishedBy: task.worker, recordedBy: effect.worker }).toEqual({
          finishedBy: names.survivor,
          recordedBy: names.victim,
        });
        expect(Number(runs[task.id])).toBeGreaterThan(1);
        rerunsOfRecorded.push(task.id);
      }
    });

    // The kill landed mid-run: the victim had finished some tasks and held others, which came back.
    const finishedBy = tally(tasks.map((t) => (t.worker === names.victim ? 'victim' : 'survivor')));
    const redeliveredCount = redelivered.filter((n) => n === 1).length;
    const ranMoreThanOnce = Object.values(runs).filter((n) => Number(n) > 1).length;
    expect(finishedBy.victim ?? 0).toBeGreaterThan(0);
    expect(redeliveredCount).toBeGreaterThan(0);
    // The broker never had more than the prefetch unacked on the victim.
    expect(redeliveredCount).toBeLessThanOrEqual(PREFETCH);
    expect(ranMoreThanOnce).toBeLessThanOrEqual(redeliveredCount);

    summary('worker-kill-9-recorded-effect', {
      tasks: TASKS,
      concurrency: CONCURRENCY,
      doneWhenKilled,
      finishedByVictim: finishedBy.victim ?? 0,
      finishedBySurvivor: finishedBy.survivor ?? 0,
      states: tally(tasks.map((t) => t.state)),
      redelivered: redeliveredCount,
      handlerRanTwice: ranMoreThanOnce,
      effectsRecorded: effects.length,
      effectsRecordedByVictim: recordedBy.victim,
      effectsRecordedBySurvivor: recordedBy.survivor,
      rerunsFindingEffectRecorded: rerunsOfRecorded.length,
      duplicateEffects: Object.values(effectsPerTask).filter((n) => n > 1).length,
      missingEffects: ids.filter((id) => effectsPerTask[id] === undefined).length,
      msFromKillToAllTerminal: recoveryMs,
    });
  } finally {
    await producer.close();
    await redis.quit().catch(() => redis.disconnect());
  }
}, 180_000);
