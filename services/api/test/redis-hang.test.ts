/**
 * A Redis that is connected but does not answer (paused, stuck on a slow
 * script, a peer gone without a FIN): ioredis still reports it "ready", so
 * without a command timeout every request would hang. Simulated with a TCP
 * proxy in this process that can stop forwarding, so the shared Redis is
 * never touched.
 */
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiApp } from '../src/app.js';
import { REDIS_COMMAND_TIMEOUT_MS } from '../src/plugins/redis.js';
import { Inspector, readyApp, REDIS_URL, testConfig } from './helpers.js';

/** Forwards to Redis; while frozen, holds what the client sends. */
class FreezableProxy {
  frozen = false;
  readonly #server: Server;
  readonly #held: { upstream: Socket; chunk: Buffer }[] = [];
  readonly #sockets = new Set<Socket>();

  constructor(target: URL) {
    this.#server = createServer((client) => {
      const upstream = createConnection(Number(target.port || 6379), target.hostname);
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket);
        socket.on('error', () => undefined);
        socket.on('close', () => this.#sockets.delete(socket));
      }
      client.on('data', (chunk: Buffer) => {
        if (this.frozen) this.#held.push({ upstream, chunk });
        else upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => client.write(chunk));
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `redis://127.0.0.1:${(this.#server.address() as AddressInfo).port}/0`;
  }

  thaw(): void {
    this.frozen = false;
    for (const { upstream, chunk } of this.#held.splice(0)) upstream.write(chunk);
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

describe('a hung Redis', () => {
  const proxy = new FreezableProxy(new URL(REDIS_URL));
  let app: ApiApp;
  let inspect: Inspector;

  beforeAll(async () => {
    const config = testConfig({ REDIS_URL: await proxy.listen() });
    inspect = await Inspector.open(config);
    app = await readyApp(config);
  });

  afterAll(async () => {
    proxy.thaw();
    await app?.close();
    await inspect?.cleanup();
    await proxy.close();
  });

  it('gets a 503 CNV_STORE_UNAVAILABLE after the command timeout instead of hanging, then recovers', async () => {
    expect((await app.inject({ method: 'POST', url: '/api/tasks', payload: { type: 'noop' } })).statusCode).toBe(202);

    proxy.frozen = true;
    const started = Date.now();
    const [submit, read] = await Promise.all([
      app.inject({ method: 'POST', url: '/api/tasks', payload: { type: 'noop' } }),
      app.inject({ method: 'GET', url: '/api/tasks/00000000-0000-4000-8000-000000000000' }),
    ]);
    const elapsed = Date.now() - started;
    expect(submit.statusCode).toBe(503);
    expect(submit.json().code).toBe('CNV_STORE_UNAVAILABLE');
    expect(submit.headers['retry-after']).toBe('5');
    expect(read.statusCode).toBe(503);
    expect(elapsed).toBeGreaterThanOrEqual(REDIS_COMMAND_TIMEOUT_MS - 100);
    // A script call may take two timeouts: ioredis checks SCRIPT EXISTS before an EVALSHA in a pipeline.
    expect(elapsed).toBeLessThan(2 * REDIS_COMMAND_TIMEOUT_MS + 1500);
    // Nothing was published for the refused submission.
    expect(await inspect.messageCount('default')).toBe(1);

    proxy.thaw();
    const after = await app.inject({ method: 'POST', url: '/api/tasks', payload: { type: 'noop' } });
    expect(after.statusCode).toBe(202);
    const { id } = after.json<{ id: string }>();
    expect((await app.inject({ method: 'GET', url: `/api/tasks/${id}` })).json().state).toBe('PENDING');
  });
});
