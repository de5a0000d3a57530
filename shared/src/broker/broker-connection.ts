/**
 * One AMQP connection per process, recovered by amqplib's own opt-in
 * recovery (exponential backoff with jitter). `setup` runs after every
 * (re)connect and must recreate what died with the old connection: channels,
 * topology, consumers. Deliveries and delivery tags die with their channel;
 * acks for them are dropped by their owners, never sent on a new channel.
 */
import amqp, { type Channel, type ChannelModel, type RecoveringChannelModel } from 'amqplib';
import type { Logger } from 'pino';
import { coalesceWrites } from './coalesce-writes.js';

export interface BrokerConnectionOptions {
  url: string;
  /** Shown in the RabbitMQ management UI and `rabbitmqctl list_connections`. */
  name: string;
  logger: Logger;
  setup(model: ChannelModel): Promise<void>;
  onDisconnect?(): void;
}

export class BrokerConnection {
  readonly #model: RecoveringChannelModel;
  /** Shared with the recovery hooks, which run before and after construction. */
  readonly #status: { connected: boolean };

  private constructor(model: RecoveringChannelModel, status: { connected: boolean }) {
    this.#model = model;
    this.#status = status;
  }

  /** Resolves at once; the first connection (and every later one) happens in the background. */
  static async open(options: BrokerConnectionOptions): Promise<BrokerConnection> {
    const { logger } = options;
    const status = { connected: false };
    const model = await amqp.connect(options.url, {
      clientProperties: { connection_name: options.name },
      // amqplib leaves Nagle's algorithm on: a publish or ack written while the
      // previous frame is unacknowledged then waits for the broker's delayed
      // TCP ACK (up to 40 ms). Conveyor's frames are small and latency-bound.
      noDelay: true,
      recovery: {
        initialDelay: 200,
        maxDelay: 5000,
        maxRetries: Infinity,
        waitForConnect: false,
        setup: async (raw: ChannelModel) => {
          if (!coalesceWrites(raw)) logger.warn('amqplib internals changed: frames are written one by one');
          await options.setup(raw);
          status.connected = true;
          logger.info('broker connected');
        },
      },
    });
    model.on('disconnect', (error: Error) => {
      status.connected = false;
      logger.warn({ err: error }, 'broker disconnected; reconnecting');
      options.onDisconnect?.();
    });
    model.on('connect-failed', (error: Error) => logger.warn({ err: error }, 'broker connection attempt failed'));
    model.on('error', (error: Error) => logger.warn({ err: error }, 'broker connection error'));
    model.on('handler-error', (error: Error, event: string) =>
      logger.error({ err: error, event }, 'broker handler threw'),
    );
    return new BrokerConnection(model, status);
  }

  get connected(): boolean {
    return this.#status.connected;
  }

  /** Resolves once connected (and set up) for the first time. */
  async waitForConnect(): Promise<void> {
    await this.#model.waitForConnect();
  }

  async close(): Promise<void> {
    this.#status.connected = false;
    await this.#model.close().catch(() => undefined);
  }
}

/** Pause before reopening a channel that closed on its own: a channel error is not retried in a tight loop. */
const REOPEN_DELAY_MS = 500;

export interface ChannelSupervision {
  /** Names the channel in logs ("publisher", "consumer"). */
  name: string;
  logger: Logger;
  /** Runs when the channel closes, for whatever reason: drop what belonged to it. */
  onClose(): void;
  /** Opens a replacement on the same connection (not called while `wanted` says no). */
  reopen(): Promise<void>;
  /** Whether a replacement is still wanted (false while shutting down). */
  wanted?(): boolean;
}

/**
 * Watches a channel opened on `model` by a setup hook. When the channel alone
 * closes (a channel error while the connection lives) it is reopened after a
 * pause; when the connection closes, the connection's recovery runs the setup
 * hook again instead, so nothing is reopened twice.
 */
export function superviseChannel(model: ChannelModel, channel: Channel, supervision: ChannelSupervision): void {
  const { name, logger } = supervision;
  let connectionOpen = true;
  model.once('close', () => (connectionOpen = false));
  channel.on('error', (error: Error) => logger.warn({ err: error }, `${name} channel error`));
  channel.once('close', () => {
    supervision.onClose();
    if (!connectionOpen || supervision.wanted?.() === false) return;
    setTimeout(() => {
      if (!connectionOpen) return;
      supervision.reopen().catch((error: unknown) => logger.error({ err: error }, `${name} channel reopen failed`));
    }, REOPEN_DELAY_MS).unref();
  });
}
