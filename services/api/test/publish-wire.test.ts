/**
 * TaskPublisher hands amqplib its fields and properties directly instead of
 * going through ConfirmChannel.publish (see task-publisher.ts): what reaches
 * a queue must be exactly what the public publish sends for the same message.
 */
import { encodeTask, newTaskMessage, TaskPublisher } from '@conveyor/shared';
import amqp, { type ChannelModel, type ConfirmChannel, type GetMessage } from 'amqplib';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AMQP_URL, Inspector, testConfig } from './helpers.js';

const config = testConfig();
let inspect: Inspector;
let model: ChannelModel;
let channel: ConfirmChannel;
let publisher: TaskPublisher;

beforeAll(async () => {
  inspect = await Inspector.open(config);
  model = await amqp.connect(AMQP_URL);
  publisher = new TaskPublisher(inspect.topology, pino({ level: 'silent' }));
  await publisher.attach(model);
  channel = await model.createConfirmChannel();
});

afterAll(async () => {
  await publisher.close();
  await model.close();
  await inspect.cleanup();
});

async function take(): Promise<GetMessage> {
  const message = await channel.get(inspect.topology.queueName('default'), { noAck: true });
  if (message === false) throw new Error('queue is empty');
  return message;
}

describe('TaskPublisher.publish', () => {
  it.each([
    ['a plain task', {}],
    ['a task with a priority and a retry override', { priority: 7, retryPolicy: { maxRetries: 2, maxDelayMs: 500 } }],
  ])('delivers %s exactly as ConfirmChannel.publish does', async (_, extra) => {
    const message = newTaskMessage({
      id: '5b0c4a6e-9d7e-4c21-9f55-0a1b2c3d4e5f',
      task: 'greet',
      kwargs: { name: 'Ada' },
      origin: 'api@test',
      expires: '2030-01-01T00:00:00.000Z',
      timelimit: [60, null],
      ...extra,
    });
    const queue = inspect.topology.queueName('default');

    await publisher.publish(message, 'default');
    const direct = await take();
    const { content, options } = encodeTask(message);
    channel.publish(inspect.topology.taskExchange, queue, content, options);
    await channel.waitForConfirms();
    const reference = await take();

    expect(direct.content.equals(reference.content)).toBe(true);
    expect(direct.properties).toEqual(reference.properties);
    expect(direct.fields.exchange).toBe(reference.fields.exchange);
    expect(direct.fields.routingKey).toBe(reference.fields.routingKey);
  });
});
