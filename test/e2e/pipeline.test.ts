/**
 * The whole path with real processes: REST submit → RabbitMQ → worker →
 * Redis → poll. One api and one worker, built from dist, on this run's
 * RabbitMQ and Redis under a private prefix; a real SMTP server in-process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeadLetterHeaders } from '@conveyor/shared';
import { jsonLines, startRole, type RunningRole } from '../support/processes.js';
import { connectAmqp, testEnv, useTestPrefix } from '../support/services.js';
import { startSmtpSink, type SmtpSink } from '../support/smtp.js';
import { waitFor } from '../support/wait.js';
import { mapConcurrent, submit, waitForTerminal } from './http.js';

const prefix = useTestPrefix();
let smtp: SmtpSink;
let api: RunningRole;
let worker: RunningRole;

beforeAll(async () => {
  smtp = await startSmtpSink();
  api = await startRole('api', testEnv(prefix));
  worker = await startRole(
    'worker',
    testEnv(prefix, { WORKER_CONCURRENCY: 16, LOG_LEVEL: 'debug', SMTP_URL: smtp.url }),
  );
});

afterAll(async () => {
  await smtp?.close();
});

describe('one task of every built-in type', () => {
  const cases: [string, Record<string, unknown>, string, (task: Record<string, unknown>) => void][] = [
    ['noop', {}, 'SUCCESS', (t) => expect(t.result).toBeNull()],
    ['sleep', { duration: 0.2 }, 'SUCCESS', (t) => expect(t.result).toBe('Processed for 0.2 seconds.')],
    ['compute', { operation: 'sum_range', input: 1_000_000 }, 'SUCCESS', (t) => expect(t.result).toBe(499_999_500_000)],
    ['compute', { operation: 'factorial', input: 20 }, 'SUCCESS', (t) => expect(t.result).toBe('2432902008176640000')],
    ['compute', { operation: 'is_prime', input: 7919 }, 'SUCCESS', (t) => expect(t.result).toBe(true)],
    ['greet', { name: 'Ada' }, 'SUCCESS', (t) => expect(t.result).toBe('Hello Ada')],
    ['reverse', { text: 'conveyor' }, 'SUCCESS', (t) => expect(t.result).toBe('royevnoc')],
    [
      'sentiment',
      { text: 'I love this wonderful, amazing product' },
      'SUCCESS',
      (t) => expect(t.result).toMatchObject({ label: 'positive' }),
    ],
    [
      'email.send',
      { to: 'ada@example.com', subject: 'Report ready', text: 'Your report is attached.' },
      'SUCCESS',
      (t) => {
        expect(t.result).toMatchObject({ accepted: ['ada@example.com'] });
        expect(smtp.mails.filter((m) => m.subject === 'Report ready')).toHaveLength(1);
      },
    ],
    [
      'fail',
      {},
      'FAILURE',
      (t) => {
        expect(t.error).toBe('Simulated task failure');
        expect(t.errorCode).toBe('CNV_SIMULATED_FAILURE');
      },
    ],
  ];

  it.each(cases)('%s %j ends %s with the expected result', async (type, kwargs, state, check) => {
    const submitted = await submit(api.url, { type, kwargs });
    expect(submitted.status).toBe(202);
    expect(submitted.body.state).toBe('PENDING');
    expect(submitted.location).toBe(`/api/tasks/${submitted.id}`);
    const task = await waitForTerminal(api.url, submitted.id);
    expect(task.state).toBe(state);
    expect(task).toMatchObject({ type, attempts: 1, worker: expect.stringContaining('worker@') });
    for (const field of ['created', 'received', 'started', 'finished']) expect(task[field]).toEqual(expect.any(String));
    expect(task.runtime).toEqual(expect.any(Number));
    check(task);
  });
});

describe('1,000 mixed tasks submitted concurrently', () => {
  it('all end in the expected state, each run exactly once, with correct results', async () => {
    const kinds = [
      { body: { type: 'noop', kwargs: {} }, state: 'SUCCESS', result: null },
      { body: { type: 'greet', kwargs: { name: 'Grace' } }, state: 'SUCCESS', result: 'Hello Grace' },
      { body: { type: 'reverse', kwargs: { text: 'abc' } }, state: 'SUCCESS', result: 'cba' },
      {
        body: { type: 'compute', kwargs: { operation: 'fibonacci', input: 90 } },
        state: 'SUCCESS',
        result: '2880067194370816120',
      },
      { body: { type: 'fail', kwargs: { message: 'expected' } }, state: 'FAILURE', result: null },
    ];
    const plan = Array.from({ length: 1000 }, (_, i) => kinds[i % kinds.length]!);
    const submitted = await mapConcurrent(plan, 64, (kind) => submit(api.url, kind.body));
    expect(submitted.every((s) => s.status === 202)).toBe(true);
    expect(new Set(submitted.map((s) => s.id)).size).toBe(1000);

    const tasks = await mapConcurrent(submitted, 32, (s) => waitForTerminal(api.url, s.id, 60_000));
    tasks.forEach((task, i) => {
      const kind = plan[i]!;
      expect(task.state).toBe(kind.state);
      if (kind.state === 'SUCCESS') expect(task.result).toEqual(kind.result);
      else expect(task.error).toBe('expected');
      expect(task.attempts).toBe(1);
    });

    // Exactly once: the worker logged one completion per task, no more.
    const finishedIds = jsonLines(worker.stdout)
      .filter((line) => line.msg === 'task finished')
      .map((line) => line.taskId as string);
    const wanted = new Set(submitted.map((s) => s.id));
    const counts = new Map<string, number>();
    for (const id of finishedIds) if (wanted.has(id)) counts.set(id, (counts.get(id) ?? 0) + 1);
    expect(counts.size).toBe(1000);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
  });
});

describe('a message that is not a valid task', () => {
  it('ends in the dead-letter queue with its reason while the worker keeps serving', async () => {
    const connection = await connectAmqp();
    try {
      const channel = await connection.createConfirmChannel();
      const garbage = [
        {
          content: Buffer.from('this is not json'),
          options: { contentType: 'application/json', headers: { task: 'noop', id: crypto.randomUUID() } },
          reason: 'not valid JSON',
        },
        {
          content: Buffer.from('[[],{},{}]'),
          options: { contentType: 'application/json', headers: { id: crypto.randomUUID() } },
          reason: 'missing "task" header',
        },
        {
          content: Buffer.from('[[],{},{}]'),
          options: { contentType: 'application/json', headers: { task: 'no.such.type', id: crypto.randomUUID() } },
          reason: 'unknown task type',
        },
      ];
      for (const g of garbage) channel.publish(`${prefix}.tasks`, `${prefix}.default`, g.content, g.options);
      await channel.waitForConfirms();

      const deadLetterQueue = `${prefix}.dead-letter`;
      await waitFor(async () => (await channel.checkQueue(deadLetterQueue)).messageCount === garbage.length, {
        timeoutMs: 15_000,
        message: 'garbage in the dead-letter queue',
      });
      const reasons: string[] = [];
      for (let i = 0; i < garbage.length; i++) {
        const message = await channel.get(deadLetterQueue, { noAck: true });
        if (!message) throw new Error('dead-letter queue drained early');
        reasons.push(String(message.properties.headers?.[DeadLetterHeaders.reason]));
        expect(message.properties.headers?.[DeadLetterHeaders.queue]).toBe(`${prefix}.default`);
      }
      for (const g of garbage) expect(reasons.some((r) => r.includes(g.reason))).toBe(true);
      await channel.close();
    } finally {
      await connection.close();
    }

    const after = await submit(api.url, { type: 'greet', kwargs: { name: 'still here' } });
    expect((await waitForTerminal(api.url, after.id)).result).toBe('Hello still here');
    expect(worker.exitStatus).toBeUndefined();
  });
});
