/**
 * Consumes the configured queues on one channel per connection, with
 * prefetch = WORKER_CONCURRENCY × WORKER_PREFETCH_MULTIPLIER: the processor
 * runs at most WORKER_CONCURRENCY of them at once, and the rest wait here,
 * so a freed slot never waits for an ack to reach the broker and the next
 * delivery to come back. Each delivery is acked on the channel it came
 * from, after the processor has recorded its outcome; if that channel died
 * meanwhile, the ack is dropped (the broker has requeued the message and
 * the store turns the redelivery into a no-op or a re-run). A delivery the
 * processor declines to start (the worker is stopping) goes back at once.
 */
import { settleWithin, superviseChannel, type Logger, type Topology } from '@conveyor/shared';
import type { Channel, ChannelModel, Message } from 'amqplib';
import { AckBatcher } from './ack-batcher.js';
import type { TaskProcessor } from './task-processor.js';

/** A delivery whose processing threw (the store or broker is failing) goes back after this pause. */
const REQUEUE_PAUSE_MS = 1000;

export interface TaskConsumerOptions {
  queues: readonly string[];
  /** Unacked deliveries the broker may hand this worker. */
  prefetch: number;
  topology: Topology;
  processor: TaskProcessor;
  logger: Logger;
}

export class TaskConsumer {
  readonly #options: TaskConsumerOptions;
  /** Deliveries handed to the processor and not yet settled (a count: see running-tasks.ts on Sets). */
  #inFlight = 0;
  /** Set while `stop` waits for the last of them. */
  #onDrained: (() => void) | null = null;
  #channel: Channel | null = null;
  #acks: AckBatcher | null = null;
  #consumerTags: string[] = [];
  #stopping = false;

  constructor(options: TaskConsumerOptions) {
    this.#options = options;
  }

  get consuming(): boolean {
    return this.#channel !== null && this.#consumerTags.length > 0 && !this.#stopping;
  }

  /** Opens the consume channel on a fresh connection; call from the connection's setup hook. */
  async attach(model: ChannelModel): Promise<void> {
    if (this.#stopping) return;
    const { logger, prefetch, queues, topology } = this.#options;
    const channel = await model.createChannel();
    superviseChannel(model, channel, {
      name: 'consumer',
      logger,
      onClose: () => {
        if (this.#channel !== channel) return;
        this.#channel = null;
        this.#acks = null;
        this.#consumerTags = [];
      },
      reopen: () => this.attach(model),
      wanted: () => !this.#stopping,
    });
    await channel.prefetch(prefetch);
    const acks = new AckBatcher(channel, logger);
    const tags: string[] = [];
    for (const queue of queues) {
      const { consumerTag } = await channel.consume(
        topology.queueName(queue),
        (delivery) => this.#onDelivery(acks, delivery, queue),
        { noAck: false },
      );
      tags.push(consumerTag);
    }
    this.#channel = channel;
    this.#acks = acks;
    this.#consumerTags = tags;
    logger.info({ queues, prefetch }, 'consuming');
  }

  /**
   * Stops taking new deliveries, lets running ones finish for up to
   * `graceMs`, then closes the channel: whatever is still unacked goes back
   * to its queue, so nothing is lost.
   */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    const channel = this.#channel;
    const { logger, processor } = this.#options;
    processor.stopStarting();
    if (channel) {
      for (const tag of this.#consumerTags) await channel.cancel(tag).catch(() => undefined);
    }
    if (this.#inFlight > 0) {
      logger.info({ running: this.#inFlight, graceMs }, 'waiting for running tasks');
      const drained = await settleWithin(new Promise<void>((resolve) => (this.#onDrained = resolve)), graceMs);
      // Unfinished tasks are not failed: closing the channel requeues them,
      // and the process exit ends their handlers.
      if (!drained)
        logger.warn({ running: this.#inFlight }, 'grace period over: unfinished tasks go back to the queue');
    }
    this.#channel = null;
    // The last outcomes' acks are still waiting for their batch: send them
    // before the close, or the broker would requeue finished tasks.
    this.#acks?.flush();
    await channel?.close().catch(() => undefined);
  }

  #onDelivery(acks: AckBatcher, delivery: Message | null, queue: string): void {
    const { processor, logger } = this.#options;
    if (delivery === null) {
      logger.warn({ queue }, 'consumer cancelled by the broker');
      return;
    }
    const open = acks.received(delivery);
    this.#inFlight++;
    void processor
      .process(delivery, queue)
      .then(
        (processed) => (processed ? acks.ack(open) : acks.requeue(open)),
        (error: unknown) => {
          logger.error({ err: error, queue }, 'delivery failed; requeueing');
          setTimeout(() => acks.requeue(open), REQUEUE_PAUSE_MS).unref();
        },
      )
      .finally(() => {
        if (--this.#inFlight === 0) this.#onDrained?.();
      });
  }
}
