/**
 * Unit tests of the built-in handlers. No network beyond an in-process SMTP
 * server on 127.0.0.1; expected math values were computed independently
 * (Python's arbitrary-precision integers), not with the code under test.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import {
  builtinTaskTypes,
  COMPUTE_LIMITS,
  loadConfig,
  type compute,
  type ComputeOperation,
  type Config,
  type KwargsOf,
} from '@conveyor/shared';
import { builtinHandlers } from '../../src/handlers/index.js';
import type { TaskContext } from '../../src/handlers/handler.js';
import { computeHandler } from '../../src/handlers/compute.js';
import { factorial, fibonacci, isPrime, runCompute, sumRange } from '../../src/handlers/compute-math.js';
import { closeEmailTransports, emailSendHandler, type EmailSendResult } from '../../src/handlers/email-send.js';
import { failHandler } from '../../src/handlers/fail.js';
import { flakyHandler } from '../../src/handlers/flaky.js';
import { hangHandler } from '../../src/handlers/hang.js';
import { greetHandler } from '../../src/handlers/greet.js';
import { noopHandler } from '../../src/handlers/noop.js';
import { reverseHandler } from '../../src/handlers/reverse.js';
import { sentimentHandler, type SentimentResult } from '../../src/handlers/sentiment.js';
import { sleepHandler } from '../../src/handlers/sleep.js';
import { runPoolTask, type PoolTask } from '../../src/pool/cpu-tasks.js';
import { startSmtpSink, type SmtpSink } from '../../../../test/support/smtp.js';

const logger = pino({ level: 'silent' });

/** Side effects done per task id, as context.once records them (in memory here). */
const effects = new Map<string, unknown>();

/**
 * A context without Redis or threads: `once` keeps its results in `effects`,
 * `runInPool` runs the pure pool function in-process, `progress` is recorded
 * in `reports`.
 */
function contextFor(
  overrides: Partial<TaskContext> = {},
  reports: { percent: number; message?: string }[] = [],
): TaskContext {
  const id = overrides.id ?? randomUUID();
  const signal = overrides.signal ?? new AbortController().signal;
  return {
    id,
    attempt: 1,
    signal,
    logger,
    config: loadConfig('worker', {}),
    progress: (percent, message) => {
      reports.push({ percent, ...(message === undefined ? {} : { message }) });
      return Promise.resolve();
    },
    once: async <T>(key: string, fn: () => T | Promise<T>) => {
      const field = `${id}/${key}`;
      if (effects.has(field)) return effects.get(field) as T;
      const result = await fn();
      effects.set(field, result);
      return result;
    },
    runInPool: async (kind, input) => {
      signal.throwIfAborted();
      return runPoolTask({ kind, input } as PoolTask);
    },
    ...overrides,
  };
}

describe('builtinHandlers', () => {
  it('has exactly one handler per built-in task type', () => {
    const handled = builtinHandlers.map((h) => h.type.name).sort();
    const declared = builtinTaskTypes.map((t) => t.name).sort();
    expect(handled).toEqual(declared);
    for (const handler of builtinHandlers) {
      expect(builtinTaskTypes).toContain(handler.type);
    }
  });
});

describe('noop', () => {
  it('returns null', () => {
    expect(noopHandler.run({}, contextFor())).toBeNull();
  });
});

describe('sleep', () => {
  it('waits, then returns the duration as given', async () => {
    await expect(sleepHandler.run({ duration: 0 }, contextFor())).resolves.toBe('Processed for 0 seconds.');
    const started = Date.now();
    await expect(sleepHandler.run({ duration: 0.05 }, contextFor())).resolves.toBe('Processed for 0.05 seconds.');
    // Timers may fire a millisecond early; 40 ms proves the wait happened.
    expect(Date.now() - started).toBeGreaterThanOrEqual(40);
  });

  it('rejects as soon as the signal aborts', async () => {
    const controller = new AbortController();
    const started = Date.now();
    const run = sleepHandler.run({ duration: 10 }, contextFor({ signal: controller.signal }));
    setTimeout(() => controller.abort(new Error('revoked')), 20);
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('rejects at once on an already aborted signal', async () => {
    await expect(sleepHandler.run({ duration: 10 }, contextFor({ signal: AbortSignal.abort() }))).rejects.toThrow();
  });

  it('reports progress once a second on long sleeps, ending at 100 %', async () => {
    const reports: { percent: number; message?: string }[] = [];
    await expect(sleepHandler.run({ duration: 2 }, contextFor({}, reports))).resolves.toBe('Processed for 2 seconds.');
    expect(reports.length).toBe(2);
    expect(reports[0]!.percent).toBeGreaterThanOrEqual(45);
    expect(reports[0]!.percent).toBeLessThan(60);
    expect(reports.at(-1)).toEqual({ percent: 100, message: '2 of 2 seconds' });
  });
});

describe('flaky', () => {
  it('fails attempts 1..failures, then succeeds with the attempt number', () => {
    for (const attempt of [1, 2]) {
      expect(() => flakyHandler.run({ failures: 2 }, contextFor({ attempt }))).toThrow(
        expect.objectContaining({ code: 'CNV_SIMULATED_FAILURE' }),
      );
    }
    expect(flakyHandler.run({ failures: 2 }, contextFor({ attempt: 3 }))).toEqual({ attempts: 3 });
    expect(flakyHandler.run({ failures: 0 }, contextFor())).toEqual({ attempts: 1 });
  });
});

describe('hang', () => {
  it('sleeps through an aborted signal', async () => {
    const started = Date.now();
    await expect(hangHandler.run({ seconds: 0.1 }, contextFor({ signal: AbortSignal.abort() }))).resolves.toBe(
      'Hung for 0.1 seconds.',
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
  });

  it('with cpu: true busy-loops in the pool for the time given', async () => {
    const started = Date.now();
    await expect(hangHandler.run({ seconds: 0.1, cpu: true }, contextFor())).resolves.toBe('Hung for 0.1 seconds.');
    expect(Date.now() - started).toBeGreaterThanOrEqual(95);
  });
});

describe('compute math', () => {
  it('sum_range loops 0+1+…+input-1', () => {
    expect(sumRange(0)).toBe(0);
    expect(sumRange(1)).toBe(0);
    expect(sumRange(10)).toBe(45);
    expect(sumRange(1_000_000)).toBe(499_999_500_000);
  });

  it('factorial returns numbers while safe and decimal strings beyond', () => {
    expect(factorial(0)).toBe(1);
    expect(factorial(1)).toBe(1);
    expect(factorial(5)).toBe(120);
    expect(factorial(18)).toBe(6_402_373_705_728_000);
    expect(factorial(20)).toBe('2432902008176640000');
    expect(factorial(25)).toBe('15511210043330985984000000');
    const big = factorial(5000);
    expect(typeof big).toBe('string');
    expect(String(big)).toHaveLength(16_326);
    expect(String(big).startsWith('42285779266055435222')).toBe(true);
  });

  it('fibonacci starts at fib(0)=0, fib(1)=1', () => {
    expect(fibonacci(0)).toBe(0);
    expect(fibonacci(1)).toBe(1);
    expect(fibonacci(2)).toBe(1);
    expect(fibonacci(10)).toBe(55);
    expect(fibonacci(78)).toBe(8_944_394_323_791_464); // the last one below 2^53
    expect(fibonacci(79)).toBe('14472334024676221');
    expect(fibonacci(90)).toBe('2880067194370816120');
    expect(fibonacci(100)).toBe('354224848179261915075');
    const big = String(fibonacci(20_000));
    expect(big).toHaveLength(4180);
    expect(big.startsWith('25311623237323612422')).toBe(true);
    expect(big.endsWith('1213093125')).toBe(true);
  });

  it('is_prime is right for small, edge and large safe integers', () => {
    const cases: Array<[number, boolean]> = [
      [0, false],
      [1, false],
      [2, true],
      [3, true],
      [4, false],
      [25, false],
      [49, false],
      [97, true],
      [7919, true],
      [2 ** 31 - 1, true],
      [1e15 + 37, true],
      // 94906249 is the largest prime below √2^53: its square checks the loop bound.
      [94_906_249 * 94_906_249, false],
      [94_906_247 * 94_906_249, false],
      [2 ** 53 - 111, true], // the largest safe prime
      [Number.MAX_SAFE_INTEGER, false],
    ];
    for (const [n, expected] of cases) {
      expect(isPrime(n), `isPrime(${n})`).toBe(expected);
    }
  });

  it('refuses inputs outside COMPUTE_LIMITS or not integers', () => {
    const within = (operation: ComputeOperation, input: number) =>
      runCompute(operation, input, COMPUTE_LIMITS[operation]);
    expect(() => within('factorial', 5001)).toThrow(RangeError);
    expect(() => within('sum_range', 100_000_001)).toThrow(RangeError);
    expect(() => within('fibonacci', -1)).toThrow(RangeError);
    expect(() => within('is_prime', 1.5)).toThrow(RangeError);
    expect(within('factorial', 5)).toBe(120);
  });
});

describe('compute handler', () => {
  // The assertion works around `operation` being typed `never` in the shared
  // schema (Type.Union over a mapped array); harmless once that is fixed.
  const kwargs = (operation: ComputeOperation, input: number) =>
    ({ operation, input }) satisfies KwargsOf<typeof compute>;

  it('dispatches on operation, in the pool', async () => {
    const context = contextFor();
    await expect(computeHandler.run(kwargs('sum_range', 1_000_000), context)).resolves.toBe(499_999_500_000);
    await expect(computeHandler.run(kwargs('sum_range', 100_000_000), context)).resolves.toBe(4_999_999_950_000_000);
    await expect(computeHandler.run(kwargs('factorial', 20), context)).resolves.toBe('2432902008176640000');
    await expect(computeHandler.run(kwargs('fibonacci', 100), context)).resolves.toBe('354224848179261915075');
    await expect(computeHandler.run(kwargs('is_prime', 7919), context)).resolves.toBe(true);
  });

  it('does not start for an aborted task', () => {
    expect(() => computeHandler.run(kwargs('sum_range', 10), contextFor({ signal: AbortSignal.abort() }))).toThrow();
  });
});

describe('greet', () => {
  it('returns "Hello <name>" with no punctuation', () => {
    expect(greetHandler.run({ name: 'World' }, contextFor())).toBe('Hello World');
    expect(greetHandler.run({ name: 'Ada Lovelace' }, contextFor())).toBe('Hello Ada Lovelace');
  });
});

describe('reverse', () => {
  it('reverses by code point, keeping surrogate pairs whole', () => {
    expect(reverseHandler.run({ text: 'hello' }, contextFor())).toBe('olleh');
    expect(reverseHandler.run({ text: '' }, contextFor())).toBe('');
    expect(reverseHandler.run({ text: 'ab😀c' }, contextFor())).toBe('c😀ba');
  });
});

describe('sentiment', () => {
  // `run` is typed `unknown` by the handler contract.
  const analyze = (text: string) => sentimentHandler.run({ text }, contextFor()) as SentimentResult;

  it('labels positive, negative and neutral text', () => {
    const positive = analyze('I love this, it is wonderful and amazing');
    expect(positive.label).toBe('positive');
    expect(positive.score).toBeGreaterThan(0);
    expect(positive.comparative).toBeGreaterThan(0);

    const negative = analyze('This is terrible, awful and I hate it');
    expect(negative.label).toBe('negative');
    expect(negative.score).toBeLessThan(0);
    expect(negative.comparative).toBeLessThan(0);

    expect(analyze('The box is on the table')).toEqual({
      score: 0,
      comparative: 0,
      label: 'neutral',
    });
  });

  it('scores a known AFINN word exactly and never returns NaN', () => {
    // AFINN-165 gives "good" +3; comparative is score per token.
    expect(analyze('good')).toEqual({ score: 3, comparative: 3, label: 'positive' });
    expect(analyze('!!!').comparative).not.toBeNaN();
  });
});

describe('fail', () => {
  it('throws with the default message and a stable code', () => {
    expect(() => failHandler.run({}, contextFor())).toThrow(
      expect.objectContaining({
        message: 'Simulated task failure',
        code: 'CNV_SIMULATED_FAILURE',
      }),
    );
  });

  it('uses the given message', () => {
    expect(() => failHandler.run({ message: 'boom' }, contextFor())).toThrow(
      expect.objectContaining({ message: 'boom', code: 'CNV_SIMULATED_FAILURE' }),
    );
  });
});

describe('email.send', () => {
  let smtp: SmtpSink;
  let config: Config;

  beforeAll(async () => {
    smtp = await startSmtpSink();
    config = loadConfig('worker', {
      SMTP_URL: smtp.url,
      SMTP_FROM: 'Conveyor <conveyor@example.test>',
    });
  });

  afterAll(async () => {
    closeEmailTransports();
    await smtp?.close();
  });

  it('sends one message with the subject, text and task-id header', async () => {
    const id = randomUUID();
    const result = (await emailSendHandler.run(
      { to: 'alice@example.test', subject: 'Conveyor test', text: 'Hello from a unit test.' },
      contextFor({ id, config }),
    )) as EmailSendResult;

    expect(smtp.mails).toHaveLength(1);
    const [message] = smtp.mails;
    expect(message?.from).toBe('conveyor@example.test');
    expect(message?.to).toEqual(['alice@example.test']);
    expect(message?.raw).toMatch(/^Subject: Conveyor test\r$/m);
    expect(message?.raw).toContain('Hello from a unit test.');
    expect(message?.raw).toMatch(new RegExp(`^X-Conveyor-Task-Id: ${id}\\r$`, 'mi'));
    expect(message?.raw).toMatch(new RegExp(`^Message-ID: <${id}@example\\.test>\\r$`, 'mi'));

    expect(result.messageId).toBe(`<${id}@example.test>`);
    expect(result.accepted).toEqual(['alice@example.test']);
    expect(result.rejected).toEqual([]);

    // Run again for the same task (a redelivery): the recorded effect answers, nothing is sent.
    const again = await emailSendHandler.run(
      { to: 'alice@example.test', subject: 'Conveyor test', text: 'Hello from a unit test.' },
      contextFor({ id, config }),
    );
    expect(again).toEqual(result);
    expect(smtp.mails).toHaveLength(1);
  });
  it('fails the attempt when the SMTP server is unreachable', async () => {
    // A port that was free a moment ago: the connection is refused at once.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));

    const unreachable = loadConfig('worker', { SMTP_URL: `smtp://127.0.0.1:${port}` });
    await expect(
      emailSendHandler.run({ to: 'bob@example.test', subject: 'x', text: 'y' }, contextFor({ config: unreachable })),
    ).rejects.toMatchObject({ code: 'ESOCKET' });
    expect(smtp.mails).toHaveLength(1);
  });
});
