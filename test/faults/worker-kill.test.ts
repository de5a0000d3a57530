/**
 * Fault 1: `kill -9` of one of two workers while 500 tasks run.
 *
 * Half the tasks are `email.send` to a real in-process SMTP server that takes
 * 20 ms per mail (so several sends are in flight at any moment), half are
 * short sleeps. One worker is SIGKILLed once a quarter of the tasks are done;
 * its unacked deliveries return to the queue and the other worker takes them.
 *
 * Asserted:
 *  - every task ends terminal, and every sleep ends SUCCESS;
 *  - no mail is ever sent twice for one task (mails counted per
 *    X-Conveyor-Task-Id header), and every email task that ended SUCCESS sent
 *    exactly one;
 *  - the only other outcome of an email task is FAILURE CNV_EFFECT_UNCERTAIN:
 *    a send the killed worker had begun (claimed in the effects hash) but not
 *    recorded as done. Whether that mail went out cannot be known, and the
 *    idempotent-effect helper refuses to risk a duplicate. There can be at
 *    most as many as the killed worker had slots (WORKER_CONCURRENCY).
 */
import { expect, it } from 'vitest';
import { startRole } from '../support/processes.js';
import { testEnv, useTestPrefix } from '../support/services.js';
import { startSmtpSink } from '../support/smtp.js';
import { sleep, waitFor } from '../support/wait.js';
import { getTask, mapConcurrent, submit, tally, waitAllTerminal } from './client.js';
import { summary } from './infra.js';

const prefix = useTestPrefix();
const TASKS = 500;
const CONCURRENCY = 8;

it('kill -9 of one of two workers mid-run: every task terminal, no mail sent twice', async () => {
  // Counted once the server has the whole message and is about to answer 250, which is
  // when a real server takes responsibility for it; each takes 20 ms to widen the in-flight window.
  const smtp = await startSmtpSink({ beforeAccept: () => sleep(20) });
  try {
    const api = await startRole('api', testEnv(prefix));
    const workerEnv = (name: string) =>
      testEnv(prefix, { WORKER_CONCURRENCY: CONCURRENCY, SMTP_URL: smtp.url, WORKER_NAME: `${prefix}-${name}` });
    const [victim, survivor] = await Promise.all([
      startRole('worker', workerEnv('victim')),
      startRole('worker', workerEnv('survivor')),
    ]);

    const plan = Array.from({ length: TASKS }, (_, i) =>
      i % 2 === 0
        ? { type: 'email.send', kwargs: { to: `user${i}@example.com`, subject: `Task ${i}`, text: 'Hello' } }
        : { type: 'sleep', kwargs: { duration: 0.2 } },
    );
    const submitted = await mapConcurrent(plan, 32, (body) => submit(api.url, body));
    expect(submitted.map((s) => s.status)).toEqual(Array(TASKS).fill(202));
    const ids = submitted.map((s) => s.id);

    // Mid-run: a quarter done, the rest queued or running on both workers.
    let done = 0;
    await waitFor(
      async () => {
        const states = await mapConcurrent(ids, 32, async (id) => (await getTask(api.url, id)).state);
        done = states.filter((s) => s === 'SUCCESS' || s === 'FAILURE').length;
        return done >= TASKS / 4;
      },
      { timeoutMs: 60_000, intervalMs: 100, message: 'a quarter of the tasks to finish' },
    );
    const killedAt = Date.now();
    victim.signal('SIGKILL');
    const exit = await victim.waitForExit(10_000);
    expect(exit.signal).toBe('SIGKILL');

    const tasks = await waitAllTerminal(api.url, ids, 120_000);
    const recoveryMs = Date.now() - killedAt;
    const mailsByTask = new Map<string, number>();
    for (const mail of smtp.mails) {
      const id = mail.headers['x-conveyor-task-id'];
      if (id !== undefined) mailsByTask.set(id, (mailsByTask.get(id) ?? 0) + 1);
    }

    const uncertain: string[] = [];
    tasks.forEach((task, i) => {
      const id = ids[i]!;
      const sent = mailsByTask.get(id) ?? 0;
      if (plan[i]!.type === 'sleep') {
        expect(task.state, `sleep ${id}`).toBe('SUCCESS');
        expect(sent).toBe(0);
        return;
      }
      expect(sent, `mails of ${id}`).toBeLessThanOrEqual(1);
      if (task.state === 'SUCCESS') {
        expect(sent, `mails of ${id}`).toBe(1);
        expect(task.result).toMatchObject({ accepted: [`user${i}@example.com`] });
      } else {
        expect(task, `email ${id}`).toMatchObject({ state: 'FAILURE', errorCode: 'CNV_EFFECT_UNCERTAIN' });
        uncertain.push(id);
      }
    });
    expect(uncertain.length).toBeLessThanOrEqual(CONCURRENCY);
    // No mail for a task we did not submit, none counted twice.
    expect([...mailsByTask.keys()].every((id) => ids.includes(id))).toBe(true);
    expect(survivor.exitStatus).toBeUndefined();

    const workers = tally(tasks.map((t) => (t.worker === `${prefix}-victim` ? 'victim' : 'survivor')));
    summary('worker-kill-9', {
      tasks: TASKS,
      emails: TASKS / 2,
      doneWhenKilled: done,
      finishedByVictim: workers.victim ?? 0,
      finishedBySurvivor: workers.survivor ?? 0,
      states: tally(tasks.map((t) => t.state)),
      mailsSent: [...mailsByTask.values()].reduce((a, b) => a + b, 0),
      duplicateMails: [...mailsByTask.values()].filter((n) => n > 1).length,
      uncertainEffects: uncertain.length,
      uncertainWithMail: uncertain.filter((id) => mailsByTask.has(id)).length,
      msFromKillToAllTerminal: recoveryMs,
    });
  } finally {
    await smtp.close();
  }
}, 240_000);
