/**
 * Bare amqplib helpers: a connection for cleanup, and the raw confirmed
 * publish rate that is the ceiling of every submit path (each 202 Conveyor
 * answers waits for one of these confirms).
 */
import amqp, { type ChannelModel, type ConfirmChannel, type Options } from 'amqplib';

export async function connectAmqp(url: string, name: string): Promise<ChannelModel> {
  return amqp.connect(url, { clientProperties: { connection_name: name } });
}

/** The broker's version, from the server properties of the connection handshake. */
export function brokerVersion(model: ChannelModel): string {
  const props = (model.connection as unknown as { serverProperties?: Record<string, unknown> }).serverProperties;
  const product = typeof props?.product === 'string' ? props.product : 'broker';
  return `${product} ${typeof props?.version === 'string' ? props.version : 'unknown'}`;
}

/** Deletes queues and exchanges by name on a channel of their own (a missing one is not an error). */
export async function deleteAmqp(model: ChannelModel, queues: readonly string[], exchanges: readonly string[] = []) {
  const channel = await model.createChannel();
  channel.on('error', () => undefined);
  try {
    for (const q of queues) await channel.deleteQueue(q);
    for (const e of exchanges) await channel.deleteExchange(e);
  } finally {
    await channel.close().catch(() => undefined);
  }
}

/**
 * Publishes `count` copies of `content` to `queue` with publisher confirms,
 * at most `window` unconfirmed at a time (a sliding window, honouring the
 * socket's back-pressure), and resolves when the last is confirmed.
 * Returns the elapsed milliseconds.
 */
export async function publishConfirmed(
  channel: ConfirmChannel,
  queue: string,
  count: number,
  content: Buffer,
  options: Options.Publish,
  window = 1000,
): Promise<number> {
  const started = performance.now();
  let sent = 0;
  let confirmed = 0;
  // An object, so the checks below see what the confirm callbacks wrote.
  const state: { nacked: Error | null } = { nacked: null };
  let wake: (() => void) | null = null;
  const onConfirm = (error: unknown) => {
    if (error) state.nacked ??= new Error('message nacked by the broker');
    confirmed++;
    const w = wake;
    wake = null;
    w?.();
  };
  while (confirmed < count) {
    if (state.nacked) throw state.nacked;
    while (sent < count && sent - confirmed < window) {
      sent++;
      const ok = channel.publish('', queue, content, options, onConfirm);
      if (!ok) await new Promise<void>((resolve) => channel.once('drain', resolve));
    }
    if (confirmed < count) await new Promise<void>((resolve) => (wake = resolve));
  }
  if (state.nacked) throw state.nacked;
  return performance.now() - started;
}

/**
 * One connection for the benchmark's own use (raw publishing, cleanup),
 * reopened on demand if the broker closed it (a restart between runs should
 * cost one run's cleanup at most, not the rest of the benchmark).
 */
export class AmqpHandle {
  readonly #url: string;
  #model: ChannelModel | null = null;
  #version = 'unknown';

  constructor(url: string) {
    this.#url = url;
  }

  async get(): Promise<ChannelModel> {
    if (this.#model) return this.#model;
    const model = await connectAmqp(this.#url, 'conveyor-bench');
    model.on('error', () => undefined);
    model.once('close', () => {
      if (this.#model === model) this.#model = null;
    });
    this.#version = brokerVersion(model);
    this.#model = model;
    return model;
  }

  /** The broker's product and version, from the last connection opened. */
  get version(): string {
    return this.#version;
  }

  async close(): Promise<void> {
    const model = this.#model;
    this.#model = null;
    await model?.close().catch(() => undefined);
  }
}
