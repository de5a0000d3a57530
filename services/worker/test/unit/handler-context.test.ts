/**
 * Unit tests of the context object a handler gets: its getters are shared
 * prototype getters, so they must still work when a handler destructures
 * them (as the README's example does). Progress and effects, which need
 * Redis, are covered by the handler-context integration tests.
 */
import { describe, expect, it } from 'vitest';
import { createLogger, loadConfig, newTaskMessage } from '@conveyor/shared';
import { HandlerContext, type HandlerContextDeps } from '../../src/consumer/handler-context.js';
import { RunningTask } from '../../src/consumer/running-task.js';

const ID = '5b0c4a6e-9d7e-4c21-9f55-0a1b2c3d4e5f';
const config = loadConfig('worker', { LOG_LEVEL: 'silent' });
// Only what the getters read; Redis, the store and the pool are never touched here.
const deps = { config, logger: createLogger(config, { component: 'test' }) } as HandlerContextDeps;

function contextOf(task: RunningTask, attempt = 1) {
  return new HandlerContext(deps, newTaskMessage({ id: ID, task: 'noop', kwargs: {}, origin: 'test' }), attempt, task);
}

describe('HandlerContext', () => {
  it('hands destructured getters the attempt signal and one child logger', () => {
    const task = new RunningTask(ID);
    const context = contextOf(task, 2);
    const { id, attempt, signal, logger } = context;
    expect([id, attempt]).toEqual([ID, 2]);
    expect(signal).toBe(task.signal);
    expect(context.logger).toBe(logger);
    expect(logger.bindings()).toMatchObject({ taskId: ID, type: 'noop' });
    task.softLimit(new Error('soft limit'));
    expect(signal.aborted).toBe(true);
  });

  it('keeps contexts of different tasks apart', () => {
    const first = new RunningTask(ID);
    const second = new RunningTask('0f0e0d0c-0b0a-4908-8706-050403020100');
    const a = contextOf(first);
    const b = contextOf(second);
    expect(a.signal).not.toBe(b.signal);
    first.end('REVOKED', new Error('terminated'));
    expect([a.signal.aborted, b.signal.aborted]).toEqual([true, false]);
  });

  it('refuses a side effect once the attempt was ended, before touching Redis', async () => {
    const task = new RunningTask(ID);
    const { once } = contextOf(task);
    const ended = new Error('terminated');
    task.end('REVOKED', ended);
    await expect(once('effect', () => 'never')).rejects.toBe(ended);
  });
});
