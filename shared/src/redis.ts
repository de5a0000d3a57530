/**
 * Redis clients. By default auto-pipelining sends every command issued in
 * the same event-loop turn as one pipeline, so concurrent requests share a
 * round trip. The task store's transition script is left out of it: the
 * store batches its state writes itself (one script call per turn).
 *
 * ioredis 6 or later: ioredis 5 lost a subscription made during the
 * connection's handshake (a result waiter's first wait right after
 * connecting), and every later wait then ran out.
 */
import { Redis } from 'ioredis';
import { TRANSITION_COMMAND } from './store/task-store.js';

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
    autoPipeliningIgnoredCommands: [TRANSITION_COMMAND],
    enableOfflineQueue: !failFast,
    maxRetriesPerRequest: failFast ? 1 : null,
    // Reconnect with capped backoff forever; readiness reports the outage.
    retryStrategy: (times) => Math.min(50 * 2 ** times, 2000),
    lazyConnect: false,
  });
}
