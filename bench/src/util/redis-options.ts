/** ioredis connection options from a redis:// URL (BullMQ takes options, and builds its own clients from them). */
export interface RedisOptions {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
}

export function redisOptionsFromUrl(url: string): RedisOptions {
  const u = new URL(url);
  const options: RedisOptions = {
    host: u.hostname || 'localhost',
    port: Number(u.port || 6379),
    db: Number(u.pathname.replace(/^\//, '') || 0),
  };
  if (u.username) options.username = decodeURIComponent(u.username);
  if (u.password) options.password = decodeURIComponent(u.password);
  return options;
}
