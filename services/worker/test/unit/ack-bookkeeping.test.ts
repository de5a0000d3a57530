/**
 * Unit tests of the consumer's bookkeeping: which acks the batcher sends for
 * a given order of finishing deliveries, and how the running tasks are found
 * by id. The channel is a recorder of the ack and nack calls the batcher
 * makes (the broker's side of acking is covered by the prefetch and
 * shutdown integration tests).
 */
import { describe, expect, it } from 'vitest';
import type { Channel, Message } from 'amqplib';
import { createLogger, loadConfig } from '@conveyor/shared';
import { AckBatcher } from '../../src/consumer/ack-batcher.js';
import { RunningTask } from '../../src/consumer/running-task.js';
import { RunningTasks } from '../../src/consumer/running-tasks.js';

type Call = ['ack', number, boolean] | ['nack', number];

function recordingChannel() {
  const calls: Call[] = [];
  const channel = {
    ack: (message: Message, allUpTo = false) => calls.push(['ack', message.fields.deliveryTag, allUpTo]),
    nack: (message: Message) => calls.push(['nack', message.fields.deliveryTag]),
  } as unknown as Channel;
  return { channel, calls };
}

const delivery = (tag: number) => ({ fields: { deliveryTag: tag } }) as Message;
const logger = createLogger(loadConfig('worker', { LOG_LEVEL: 'silent' }), { component: 'test' });

function batcherWith(tags: number[]) {
  const { channel, calls } = recordingChannel();
  const acks = new AckBatcher(channel, logger);
  const open = tags.map((tag) => acks.received(delivery(tag)));
  return { acks, open, calls };
}

describe('AckBatcher', () => {
  it('acks a finished run at the front with one multiple ack', () => {
    const { acks, open, calls } = batcherWith([1, 2, 3, 4]);
    for (const entry of open.slice(0, 3)) acks.ack(entry);
    acks.flush();
    expect(calls).toEqual([['ack', 3, true]]);
    acks.ack(open[3]!);
    acks.flush();
    expect(calls).toEqual([
      ['ack', 3, true],
      ['ack', 4, true],
    ]);
  });

  it('acks finished deliveries behind a running one singly and the front run later', () => {
    const { acks, open, calls } = batcherWith([1, 2, 3, 4]);
    acks.ack(open[1]!);
    acks.ack(open[3]!);
    acks.flush();
    expect(calls).toEqual([
      ['ack', 2, false],
      ['ack', 4, false],
    ]);
    acks.ack(open[0]!);
    acks.ack(open[2]!);
    acks.flush();
    // 2 and 4 are settled: 1 and 3 are all that is open, so one multiple ack up to 3 covers both.
    expect(calls.slice(2)).toEqual([['ack', 3, true]]);
  });

  it('requeues one delivery and then sends the acks it held back', () => {
    const { acks, open, calls } = batcherWith([1, 2, 3]);
    acks.ack(open[1]!);
    acks.ack(open[2]!);
    acks.requeue(open[0]!);
    expect(calls).toEqual([
      ['nack', 1],
      ['ack', 3, true],
    ]);
    acks.flush();
    expect(calls).toHaveLength(2);
  });

  it('acks a delivery once however often its outcome is reported', () => {
    const { acks, open, calls } = batcherWith([1]);
    acks.ack(open[0]!);
    acks.ack(open[0]!);
    acks.flush();
    acks.flush();
    expect(calls).toEqual([['ack', 1, true]]);
  });

  it('flushes on its own after the current turn', async () => {
    const { acks, open, calls } = batcherWith([1, 2]);
    acks.ack(open[0]!);
    acks.ack(open[1]!);
    expect(calls).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toEqual([['ack', 2, true]]);
  });
});

describe('RunningTasks', () => {
  it('finds tasks by id, the latest one for a duplicate id, and forgets removed ones', () => {
    const running = new RunningTasks();
    const [a, b, c, b2] = ['a', 'b', 'c', 'b'].map((id) => new RunningTask(id));
    for (const task of [a!, b!, c!, b2!]) running.add(task);
    expect(running.size).toBe(4);
    expect(running.find('b')).toBe(b2);
    running.remove(b2!);
    expect(running.find('b')).toBe(b);
    running.remove(a!);
    expect(running.find('a')).toBeUndefined();
    expect(running.find('c')).toBe(c);
    running.remove(a!);
    expect(running.size).toBe(2);
  });
});
