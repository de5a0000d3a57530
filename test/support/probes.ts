/**
 * Does a RabbitMQ or Redis really answer at a URL? A TCP connect is not
 * enough: RabbitMQ may accept sockets while still booting, and something else
 * may own the port, so each probe completes a real protocol exchange (an AMQP
 * connection open, a Redis PING) under a short deadline.
 */
import amqp from 'amqplib';
import { Redis } from 'ioredis';

/** Resolves when an AMQP connection to `url` opens within `timeoutMs`; rejects with the reason otherwise. */
export async function probeAmqp(url: string, timeoutMs = 3000): Promise<void> {
  const attempt = amqp.connect(url, { timeout: timeoutMs });
  let connection;
  try {
    connection = await withDeadline(attempt, timeoutMs, `no AMQP handshake from ${redact(url)}`);
  } catch (error) {
    // A connection that opens after we gave up is closed rather than leaked.
    attempt
      .then(
        (late) => late.close(),
        () => undefined,
      )
      .catch(() => undefined);
    throw error;
  }
  await connection.close().catch(() => undefined);
}

/** Resolves when Redis at `url` answers PING within `timeoutMs`; rejects with the reason otherwise. */
export async function probeRedis(url: string, timeoutMs = 3000): Promise<void> {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  // ioredis rejects with a bare "Connection is closed."; the 'error' event says why (ECONNREFUSED, …).
  let cause: Error | undefined;
  redis.on('error', (error: Error) => (cause ??= error));
  try {
    await withDeadline(
      redis.connect().then(() => redis.ping()),
      timeoutMs,
      `no PING answer from ${redact(url)}`,
    );
  } catch (error) {
    throw cause ? new Error(cause.message, { cause: error }) : error;
  } finally {
    redis.disconnect();
  }
}

/** `url` without its password, for messages. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}

function withDeadline<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
