/**
 * Unit tests of the pure parts of the worker's reliability features: retry
 * backoff and decisions, time limits, the pool's task functions, the
 * running-task ending and control messages. No network, no threads.
 */
import { describe, expect, it } from 'vitest';
import {
  COMPUTE_LIMITS,
  DEFAULT_RETRY,
  Errors,
  newTaskMessage,
  parseControlMessage,
  encodeControlMessage,
  RejectTask,
  RetryTask,
  type RetryPolicy,
} from '@conveyor/shared';
import { decideOnFailure, timeLimitsOf } from '../../src/consumer/attempt-policy.js';
import { retryDelayMs } from '../../src/consumer/backoff.js';
import { RunningTask } from '../../src/consumer/running-task.js';
import { runPoolTask, spin } from '../../src/pool/cpu-tasks.js';
import runEntry from '../../src/pool/pool-entry.js';

const ID = '5b0c4a6e-9d7e-4c21-9f55-0a1b2c3d4e5f';
const policy: RetryPolicy = { maxRetries: 5, baseDelayMs: 200, maxDelayMs: 2000 };

describe('retry backoff (full jitter)', () => {
  it('stays within [0, min(cap, base·2^n)] and reaches both ends', () => {
    for (const [retry, ceiling] of [
      [0, 200],
      [1, 400],
      [3, 1600],
      [4, 2000],
      [20, 2000],
    ] as const) {
      expect(retryDelayMs(policy, retry, () => 0)).toBe(0);
      expect(retryDelayMs(policy, retry, () => 1)).toBe(ceiling);
      expect(retryDelayMs(policy, retry, () => 0.5)).toBe(ceiling / 2);
      for (let i = 0; i < 100; i++) {
        const delay = retryDelayMs(policy, retry);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThanOrEqual(ceiling);
      }
    }
  });
});

describe('decideOnFailure', () => {
  const half = () => 0.5;

  it('retries an ordinary error while retries remain, with the backoff delay', () => {
    const error = new Errors.SIMULATED_FAILURE('boom');
    expect(decideOnFailure(error, policy, 0, half)).toEqual({ retry: true, delayMs: 100 });
    expect(decideOnFailure(error, policy, 2, half)).toEqual({ retry: true, delayMs: 400 });
    expect(decideOnFailure(error, policy, 4, half)).toEqual({ retry: true, delayMs: 1000 });
  });

  it('fails once retries are used up, as exhausted (dead-letter) only if there were any', () => {
    const error = new Error('boom');
    expect(decideOnFailure(error, policy, 5)).toEqual({ retry: false, exhausted: true, error });
    expect(decideOnFailure(error, DEFAULT_RETRY, 0)).toEqual({ retry: false, exhausted: false, error });
  });

  it('uses a RetryTask countdown exactly, and fails with its cause when retries are used up', () => {
    const cause = new Error('smtp down');
    const retry = new RetryTask({ countdownSeconds: 1.5, cause });
    expect(retry).toMatchObject({ code: 'CNV_RETRY_REQUESTED', message: 'smtp down', countdownSeconds: 1.5 });
    expect(decideOnFailure(retry, policy, 0)).toEqual({ retry: true, delayMs: 1500 });
    expect(decideOnFailure(retry, policy, 5)).toEqual({ retry: false, exhausted: true, error: cause });
    const bare = new RetryTask();
    expect(decideOnFailure(bare, policy, 1, half)).toEqual({ retry: true, delayMs: 200 });
    expect(decideOnFailure(bare, policy, 5)).toMatchObject({ retry: false, error: bare });
  });

  it.each([
    ['a RejectTask', new RejectTask('no such user')],
    ['a soft time limit', new Errors.SOFT_TIME_LIMIT(5)],
    ['a hard time limit', new Errors.HARD_TIME_LIMIT(10)],
    ['invalid kwargs', new Errors.INVALID_KWARGS('kwargs.x is required')],
    ['an uncertain side effect', new Errors.EFFECT_UNCERTAIN('smtp.send')],
  ])('never retries %s', (_name, error) => {
    expect(decideOnFailure(error, policy, 0)).toEqual({ retry: false, exhausted: false, error });
  });

  it('RejectTask carries its code and message', () => {
    expect(new RejectTask('nope')).toMatchObject({
      code: 'CNV_PERMANENT_FAILURE',
      message: 'nope',
      name: 'RejectTask',
    });
    expect(() => new RetryTask({ countdownSeconds: -1 })).toThrow(RangeError);
  });
});

describe('timeLimitsOf', () => {
  const type = { softSeconds: 5, hardSeconds: 10 };
  const message = (timelimit: [number | null, number | null]) =>
    newTaskMessage({ id: ID, task: 'hang', kwargs: {}, origin: 'o', timelimit });

  it('takes [hard, soft] from the header, each null falling back to the type', () => {
    expect(timeLimitsOf(message([2, 1]), type)).toEqual({ hardSeconds: 2, softSeconds: 1 });
    expect(timeLimitsOf(message([null, 1]), type)).toEqual({ hardSeconds: 10, softSeconds: 1 });
    expect(timeLimitsOf(message([3, null]), type)).toEqual({ hardSeconds: 3, softSeconds: 5 });
    expect(timeLimitsOf(message([null, null]), { softSeconds: null, hardSeconds: null })).toEqual({
      hardSeconds: null,
      softSeconds: null,
    });
  });
});

describe('pool task functions', () => {
  it('computes what compute-math computes, through the entry and directly', () => {
    const compute = (operation: 'factorial' | 'is_prime', input: number) =>
      ({ kind: 'compute', input: { operation, input, limit: COMPUTE_LIMITS[operation] } }) as const;
    expect(runEntry(compute('factorial', 20))).toBe('2432902008176640000');
    expect(runPoolTask(compute('is_prime', 7919))).toBe(true);
    expect(() => runPoolTask(compute('factorial', 5001))).toThrow(RangeError);
  });

  it('spin busy-loops for the wall time given', () => {
    const started = performance.now();
    expect(spin(0.05)).toBeGreaterThan(0);
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(50);
    expect(elapsed).toBeLessThan(1000);
    expect(spin(0)).toBeGreaterThan(0);
    expect(() => spin(-1)).toThrow(RangeError);
  });
});

describe('RunningTask', () => {
  it('aborts only the handler signal at the soft limit', () => {
    const task = new RunningTask(ID);
    const error = new Errors.SOFT_TIME_LIMIT(1);
    task.softLimit(error);
    expect(task.signal.aborted).toBe(true);
    expect(task.signal.reason).toBe(error);
    expect(task.killSignal.aborted).toBe(false);
    expect(task.ending).toBeNull();
  });

  it('ends once: both signals abort and `ended` resolves with the first ending', async () => {
    const task = new RunningTask(ID);
    const revoked = new Errors.TASK_REVOKED('terminated');
    expect(task.end('REVOKED', revoked)).toBe(true);
    expect(task.end('FAILURE', new Errors.HARD_TIME_LIMIT(1))).toBe(false);
    expect(task.signal.aborted && task.killSignal.aborted).toBe(true);
    await expect(task.ended).resolves.toEqual({ state: 'REVOKED', error: revoked });
    expect(revoked).toMatchObject({ code: 'CNV_TASK_REVOKED', message: 'terminated' });
  });
});

describe('control messages', () => {
  it('round-trips a terminate and refuses anything else', () => {
    const text = encodeControlMessage({ type: 'terminate', id: ID });
    expect(JSON.parse(text)).toEqual({ type: 'terminate', id: ID });
    expect(parseControlMessage(text)).toEqual({ type: 'terminate', id: ID });
    expect(parseControlMessage('{"type":"terminate","id":"42"}')).toBeNull();
    expect(parseControlMessage('{"type":"shutdown"}')).toBeNull();
    expect(parseControlMessage('not json')).toBeNull();
  });
});
