/** Redis helpers for measuring and cleaning up: bounded SCAN loops, memory figures. */
import { Redis } from 'ioredis';

export function connectRedis(url: string, name: string): Redis {
  const redis = new Redis(url, { connectionName: name, maxRetriesPerRequest: 3, enableAutoPipelining: false });
  // Outages surface as the commands' own rejections (and fail the run); one line is enough here.
  let reported = false;
  redis.on('error', (error: Error) => {
    if (!reported) process.stderr.write(`redis (${name}): ${error.message}\n`);
    reported = true;
  });
  redis.on('ready', () => (reported = false));
  return redis;
}

/** Upper bound on SCAN iterations (COUNT 1000 each): ~100 M keys, far beyond any run here. */
const MAX_SCAN_CALLS = 100_000;

/** Calls `each` with every batch of keys matching `pattern` (SCAN MATCH, so other keys are never touched). */
export async function scanKeys(redis: Redis, pattern: string, each: (keys: string[]) => Promise<void>): Promise<void> {
  let cursor = '0';
  for (let calls = 0; calls < MAX_SCAN_CALLS; calls++) {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    if (keys.length > 0) await each(keys);
    cursor = next;
    if (cursor === '0') return;
  }
  throw new Error(`SCAN ${pattern} did not finish within ${MAX_SCAN_CALLS} calls`);
}

/** Deletes (UNLINK) every key matching `pattern`; returns how many. */
export async function deleteKeys(redis: Redis, pattern: string): Promise<number> {
  let deleted = 0;
  await scanKeys(redis, pattern, async (keys) => {
    deleted += await redis.unlink(...keys);
  });
  return deleted;
}

/** Sum of MEMORY USAGE over the keys matching `pattern`, grouped by `classify(key)`. */
export async function memoryByClass(
  redis: Redis,
  pattern: string,
  classify: (key: string) => string,
): Promise<Record<string, { keys: number; bytes: number }>> {
  const out: Record<string, { keys: number; bytes: number }> = {};
  await scanKeys(redis, pattern, async (keys) => {
    const pipeline = redis.pipeline();
    // SAMPLES 0: measure every element of nested types, not an estimate from 5.
    for (const key of keys) pipeline.call('MEMORY', 'USAGE', key, 'SAMPLES', '0');
    const results = (await pipeline.exec()) ?? [];
    keys.forEach((key, i) => {
      const bytes = Number(results[i]?.[1] ?? 0);
      const cls = classify(key);
      const slot = (out[cls] ??= { keys: 0, bytes: 0 });
      slot.keys++;
      slot.bytes += bytes;
    });
  });
  return out;
}

export async function infoField(redis: Redis, section: string, field: string): Promise<string | undefined> {
  const info = await redis.info(section);
  const match = new RegExp(`^${field}:(.*)$`, 'm').exec(info);
  return match?.[1]?.trim();
}

export async function usedMemory(redis: Redis): Promise<number> {
  return Number(await infoField(redis, 'memory', 'used_memory'));
}
