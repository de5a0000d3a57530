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

export class AckBatcher {
  readonly #channel: Channel;
  readonly #logger: Logger;
  /** Unsettled deliveries in tag order. */
  readonly #open: Message[] = [];
  readonly #finished = new Set<Message>();
  #scheduled = false;

  constructor(channel: Channel, logger: Logger) {
    this.#channel = channel;
    this.#logger = logger;
  }

  received(delivery: Message): void {
    this.#open.push(delivery);
  }

  /** The delivery's outcome is recorded: ack it with the next flush. */
  ack(delivery: Message): void {
    this.#finished.add(delivery);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Gives the delivery back to the broker at once (it goes to the back of its queue). */
  requeue(delivery: Message): void {
    this.#forget(delivery);
    this.#settle(() => this.#channel.nack(delivery, false, true));
    // It may have been the gap holding finished deliveries back.
    if (this.#finished.size > 0) this.flush();
  }

  /** Sends the acks collected so far; the consumer also calls it right before closing the channel. */
  flush(): void {
    this.#scheduled = false;
    let last: Message | undefined;
    while (this.#open.length > 0 && this.#finished.has(this.#open[0]!)) {
      last = this.#open.shift()!;
      this.#finished.delete(last);
    }
    if (last) {
      const upTo = last;
      this.#settle(() => this.#channel.ack(upTo, true));
    }
    for (const delivery of this.#finished) {
      this.#forget(delivery);
      this.#settle(() => this.#channel.ack(delivery));
    }
    this.#finished.clear();
  }

  #forget(delivery: Message): void {
    const index = this.#open.indexOf(delivery);
    if (index >= 0) this.#open.splice(index, 1);
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
