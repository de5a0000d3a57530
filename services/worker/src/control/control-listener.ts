/**
 * Listens on the control channel (`keys.control`, see
 * shared/src/store/control-messages.ts) on a connection of its own: a Redis
 * connection in subscriber mode can issue no other commands. ioredis
 * resubscribes by itself after a reconnect; a terminate published while this
 * worker was disconnected is lost, which is acceptable for a best-effort
 * "stop it now" (the task's own time limits still bound it).
 */
import { parseControlMessage, type Logger, type RedisKeys } from '@conveyor/shared';
import type { Redis } from 'ioredis';

export interface ControlTarget {
  /** Ends task `id` if it runs here; false when it does not. */
  terminate(id: string): boolean;
}

export class ControlListener {
  readonly #subscriber: Redis;

  private constructor(subscriber: Redis) {
    this.#subscriber = subscriber;
  }

  /** Subscribes in the background: start-up never waits for Redis. */
  static start(redis: Redis, keys: RedisKeys, target: ControlTarget, logger: Logger): ControlListener {
    const subscriber = redis.duplicate();
    subscriber.on('error', (error: Error) => logger.warn({ err: error }, 'control connection error'));
    subscriber.on('message', (channel: string, text: string) => {
      if (channel !== keys.control) return;
      const message = parseControlMessage(text);
      if (message === null) {
        logger.warn({ message: text.slice(0, 200) }, 'ignored an unknown control message');
        return;
      }
      if (target.terminate(message.id)) logger.info({ taskId: message.id }, 'terminating task');
      else logger.debug({ taskId: message.id }, 'terminate: task not running here');
    });
    subscriber
      .subscribe(keys.control)
      .catch((error: unknown) => logger.error({ err: error }, 'control subscribe failed'));
    return new ControlListener(subscriber);
  }

  async close(): Promise<void> {
    await this.#subscriber.quit().catch(() => this.#subscriber.disconnect());
  }
}
