/**
 * What a handler's context gives it, against a real Redis and worker
 * processes: progress reports in the task record, and `once` side effects
 * (email.send) that a redelivery never repeats, with a real SMTP server
 * in-process.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTaskProgress } from '@conveyor/shared';
import { runOnce, type EffectScope } from '../../src/effects/once.js';
import { startRole, type RunningRole } from '../../../../test/support/processes.js';
import { startSmtpSink, type SmtpSink } from '../../../../test/support/smtp.js';
import { testEnv, useTestPrefix } from '../../../../test/support/services.js';
import { waitFor } from '../../../../test/support/wait.js';
import { useHarness } from './harness.js';

const prefix = useTestPrefix();
const harness = useHarness(prefix);
let worker: RunningRole;
let workerEnv: Record<string, string>;

let smtp: SmtpSink;
/** While set, the server takes a mail's data but does not answer until `release` is called. */
let hold: { arrived: () => void; release: Promise<void> } | null = null;

/** Mails the SMTP server accepted with this subject. */
const sent = (subject: string) => smtp.mails.filter((m) => m.subject === subject).length;

beforeAll(async () => {
  smtp = await startSmtpSink({
    beforeAccept: () => {
      if (hold === null) return;
      hold.arrived();
      return hold.release;
    },
  });
  workerEnv = testEnv(prefix, { WORKER_CONCURRENCY: 4, SMTP_URL: smtp.url });
  worker = await startRole('worker', workerEnv);
});

afterAll(async () => {
  await smtp?.close();
});

describe('progress', () => {
  it('sleep reports progress and a message each second while it runs', async () => {
    const id = await harness().submit('sleep', { duration: 3 });
    const midway = await waitFor(
      async () => {
        const task = await harness().task(id);
        return task?.state === 'STARTED' && task.progress !== null ? task : null;
      },
      { timeoutMs: 5000, intervalMs: 50, message: 'a progress report' },
    );
    expect(midway.progress).toBeGreaterThan(0);
    expect(midway.progress).toBeLessThan(100);
    expect(midway.progressMessage).toMatch(/^[12] of 3 seconds$/);

    const done = await harness().waitForState(id);
    expect(done).toMatchObject({ state: 'SUCCESS', progress: 100, progressMessage: '3 of 3 seconds' });
  });

  it('is never written into a finished or unknown task', async () => {
    const id = await harness().submit('noop', {});
    await harness().waitForState(id);
    await expect(writeTaskProgress(harness().redis, harness().keys, id, 50, 'late')).resolves.toBe('terminal');
    expect(await harness().task(id)).toMatchObject({ progress: null, progressMessage: null });
    await expect(writeTaskProgress(harness().redis, harness().keys, randomUUID(), 50)).resolves.toBe('unknown');
    expect(await harness().redis.exists(harness().keys.task(randomUUID()))).toBe(0);
  });
});

describe('once', () => {
  const scope = (): EffectScope => ({
    redis: harness().redis,
    keys: harness().keys,
    taskId: randomUUID(),
    owner: 'test attempt 1',
    ttlSeconds: 60,
  });

  it('runs an effect once and answers later calls with its stored result', async () => {
    const s = scope();
    let runs = 0;
    const effect = () => ({ run: ++runs });
    await expect(runOnce(s, 'charge', effect)).resolves.toEqual({ run: 1 });
    await expect(runOnce(s, 'charge', effect)).resolves.toEqual({ run: 1 });
    await expect(runOnce(s, 'refund', effect)).resolves.toEqual({ run: 2 });
    expect(runs).toBe(2);
    const ttl = await harness().redis.ttl(harness().keys.effects(s.taskId));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60);
  });

  it('releases the claim when the effect fails, so a retry may run it', async () => {
    const s = scope();
    await expect(
      runOnce(s, 'charge', () => {
        throw new Error('card declined');
      }),
    ).rejects.toThrow('card declined');
    await expect(runOnce(s, 'charge', () => 'charged')).resolves.toBe('charged');
  });

  it('refuses an effect an earlier delivery claimed and never finished, unless told to rerun', async () => {
    const s = scope();
    const claim = JSON.stringify({ state: 'claimed', at: Date.now() - 1000, by: 'dead-worker attempt 1' });
    await harness().redis.hset(harness().keys.effects(s.taskId), 'charge', claim);
    let runs = 0;
    await expect(runOnce(s, 'charge', () => ++runs)).rejects.toMatchObject({ code: 'CNV_EFFECT_UNCERTAIN' });
    expect(runs).toBe(0);
    await expect(runOnce(s, 'charge', () => ++runs, { ifUncertain: 'rerun' })).resolves.toBe(1);
    await expect(runOnce(s, 'charge', () => ++runs)).resolves.toBe(1);
  });
});

describe('email.send', () => {
  const email = (subject: string) => ({ to: 'ada@example.test', subject, text: 'Your report is ready.' });

  it('redelivered after the mail went out, returns the first send and does not mail again', async () => {
    const message = harness().message('email.send', email('Report once'));
    await harness().publish(message);
    const first = await harness().waitForState(message.id);
    expect(first).toMatchObject({ state: 'SUCCESS', result: { accepted: ['ada@example.test'] } });
    expect(sent('Report once')).toBe(1);

    // The worker "died" after the effect was recorded and before SUCCESS reached the
    // store: the record is not there, and the broker hands the same message out again.
    await harness().redis.del(harness().keys.task(message.id));
    await harness().publish(message);
    const second = await harness().waitForState(message.id);
    expect(second).toMatchObject({ state: 'SUCCESS', result: first.result });
    expect(sent('Report once')).toBe(1);
  });

  it('killed in the middle of sending: the redelivery fails CNV_EFFECT_UNCERTAIN instead of mailing twice', async () => {
    let arrived!: () => void;
    const dataArrived = new Promise<void>((resolve) => (arrived = resolve));
    let release!: () => void;
    hold = { arrived, release: new Promise<void>((resolve) => (release = resolve)) };
    let id: string;
    try {
      id = await harness().submit('email.send', email('Report crash'));
      await dataArrived;
      // The server has the mail, the worker has no answer yet: kill it there.
      worker.signal('SIGKILL');
      await worker.waitForExit(5000);
    } finally {
      release();
      hold = null;
    }
    worker = await startRole('worker', workerEnv);
    const task = await harness().waitForState(id);
    expect(task).toMatchObject({ state: 'FAILURE', errorCode: 'CNV_EFFECT_UNCERTAIN', attempts: 1 });
    expect(task.error).toContain('"smtp.send"');
    expect(sent('Report crash')).toBe(1);
  });
});
