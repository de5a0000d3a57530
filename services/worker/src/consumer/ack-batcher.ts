/**
 * Acks in batches without ever acking too much. Deliveries on a channel carry
 * increasing delivery tags; `basic.ack` with `multiple` acks every tag up to
 * the one given. So each flush acks the longest run of finished deliveries at
 * the front with one `multiple` ack, and finished deliveries behind a
 * still-running one one by one (a slow task must not hold back the prefetch
 * window of the fast ones behind it).
 *
 * One batcher per channel: tags are per channel, and when the channel dies
 * its batcher is dropped with it (the broker requeued those deliveries).
 */
import type { Channel, Message } from 'amqplib';
import type { Logger } from '@conveyor/shared';

/** A delivery the batcher holds until it is acked or requeued. */
export interface OpenDelivery {
  readonly delivery: Message;
  /** Its outcome is recorded: acked with the next flush. */
  finished: boolean;
}

export class AckBatcher {
  readonly #channel: Channel;
  readonly #logger: Logger;
  /**
   * Unsettled deliveries in tag order, each with its own finished flag.
   * Flags and one array compacted in place rather than a Set of finished
   * deliveries: a Set that churns at the task rate keeps finished tasks
   * alive past the young generation (see running-tasks.ts).
   */
  readonly #open: OpenDelivery[] = [];
  /** How many entries of #open are finished. */
  #finished = 0;
  #scheduled = false;

  constructor(channel: Channel, logger: Logger) {
    this.#channel = channel;
    this.#logger = logger;
  }

  received(delivery: Message): OpenDelivery {
    const open = { delivery, finished: false };
    this.#open.push(open);
    return open;
  }

  /** The delivery's outcome is recorded: ack it with the next flush. */
  ack(open: OpenDelivery): void {
    if (open.finished) return;
    open.finished = true;
    this.#finished++;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Gives the delivery back to the broker at once (it goes to the back of its queue). */
  requeue(open: OpenDelivery): void {
    const index = this.#open.indexOf(open);
    if (index < 0) return;
    this.#open.splice(index, 1);
    if (open.finished) this.#finished--;
    this.#settle(() => this.#channel.nack(open.delivery, false, true));
    // It may have been the gap holding finished deliveries back.
    if (this.#finished > 0) this.flush();
  }

  /** Sends the acks collected so far; the consumer also calls it right before closing the channel. */
  flush(): void {
    this.#scheduled = false;
    if (this.#finished === 0) return;
    const open = this.#open;
    let front = 0;
    while (front < open.length && open[front]!.finished) front++;
    if (front > 0) {
      const upTo = open[front - 1]!.delivery;
      this.#settle(() => this.#channel.ack(upTo, true));
    }
    // Ack the finished ones behind the gap singly and keep the rest, in order.
    let kept = 0;
    for (let i = front; i < open.length; i++) {
      const entry = open[i]!;
      if (entry.finished) this.#settle(() => this.#channel.ack(entry.delivery));
      else open[kept++] = entry;
    }
    open.length = kept;
    this.#finished = 0;
  }

  #settle(send: () => void): void {
    try {
      send();
    } catch (error) {
      // The channel closed under us: its deliveries are back in the queue.
      this.#logger.debug({ err: error }, 'ack dropped: channel closed');
    }
  }
}
