/**
 * Redis clients. Auto-pipelining sends every command issued in the same
 * event-loop turn as one pipeline: the state writes of many concurrent tasks
 * share one round trip without any batching code of our own.
 */
import { Redis } from 'ioredis';

export interface RedisClientOptions {
  /**
   * true (api): fail commands at once while disconnected, so a request gets
   * a 503 instead of hanging. false (worker): queue commands until Redis is
   * back, so an outcome is written late rather than lost.
   */
  failFast: boolean;
  name: string;
  /**
   * Rejects a command with no reply after this many ms (unset: wait forever).
   * A connected but hung Redis (paused, stuck on a slow script, a dead peer
   * whose socket has not timed out yet) would otherwise hold every request;
   * only for clients that send no blocking commands.
   */
  commandTimeout?: number;
}

export function createRedis(url: string, { failFast, name, commandTimeout }: RedisClientOptions): Redis {
  return new Redis(url, {
    ...(commandTimeout === undefined ? {} : { commandTimeout }),
    connectionName: name,
    enableAutoPipelining: true,
    enableOfflineQueue: !failFast,
    maxRetriesPerRequest: failFast ? 1 : null,
    // Reconnect with capped backoff forever; readiness reports the outage.
    retryStrategy: (times) => Math.min(50 * 2 ** times, 2000),
    lazyConnect: false,
  });
}

/**
 * Subscribes `redis` to `channel`, but never during its connection's
 * handshake. ioredis writes SUBSCRIBE at once while a connection is in
 * status `connect` (Redis accepts it while loading); the subscribed
 * connection then refuses the handshake's ready check, and ioredis
 * reconnects without the subscription although the subscribe resolved: the
 * caller would never hear a message. Outside the handshake the client's own
 * rules apply (queued while disconnected, or refused at once without an
 * offline queue), and ioredis resubscribes a ready connection that dropped.
 */
export async function subscribeAfterHandshake(redis: Redis, channel: string): Promise<void> {
  if (redis.status === 'connect') await handshakeEnd(redis);
  await redis.subscribe(channel);
}

/** Resolves once the handshake in progress has ended, ready or not. */
function handshakeEnd(redis: Redis): Promise<void> {
  return new Promise((resolve) => {
    const ended = () => {
      redis.off('ready', ended);
      redis.off('close', ended);
      resolve();
    };
    redis.on('ready', ended);
    redis.on('close', ended);
  });
}
