/**
 * Idempotency-Key on POST /api/tasks against the real broker and Redis: one
 * task per key and body however the requests interleave, 409 for a different
 * body, the key freed again when a submission fails, and claims left by a
 * request that died mid-way resolved once they are stale.
 */
import { randomUUID } from 'node:crypto';
import { STALE_CLAIM_MS, submissionHash, type Submission } from '@conveyor/shared';
import { describe, expect, it } from 'vitest';
import { useApiApp } from './helpers.js';

const api = useApiApp();

const post = (key: string | undefined, payload: object) =>
  api.app.inject({
    method: 'POST',
    url: '/api/tasks',
    headers: key === undefined ? {} : { 'idempotency-key': key },
    payload,
  });

const keyOf = (key: string) => `${api.config.prefix}:idempotency:${key}`;

/** Claims `key` for `body` and task `id` as a request did STALE_CLAIM_MS + 1 s ago (its TTL ran down by that much). */
async function claimStale(key: string, body: Submission, id: string): Promise<void> {
  const ageMs = STALE_CLAIM_MS + 1000;
  await api.inspect.redis.set(
    keyOf(key),
    `${submissionHash(body)} ${id}`,
    'PX',
    api.config.resultTtlSeconds * 1000 - ageMs,
  );
}

describe('Idempotency-Key', () => {
  it('answers a repeated request with the same task, marked replayed, and queues one message', async () => {
    const key = `order-${randomUUID()}`;
    const before = await api.inspect.messageCount('default');
    const body = { type: 'greet', kwargs: { name: 'Ada' } };
    const first = await post(key, body);
    expect(first.statusCode).toBe(202);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    const second = await post(key, body);
    expect(second.statusCode).toBe(202);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(second.json()).toEqual(first.json());
    expect(second.headers.location).toBe(first.headers.location);
    expect(await api.inspect.messageCount('default')).toBe(before + 1);

    const stored = await api.inspect.redis.get(keyOf(key));
    expect(stored?.startsWith(`${submissionHash(body)} ${first.json<{ id: string }>().id} {`)).toBe(true);
    const ttl = await api.inspect.redis.ttl(keyOf(key));
    expect(ttl).toBeGreaterThan(api.config.resultTtlSeconds - 60);
    expect(ttl).toBeLessThanOrEqual(api.config.resultTtlSeconds);
  });

  it('replays even after the task has finished, with the original 202 body', async () => {
    const key = randomUUID();
    const first = await post(key, { type: 'noop' });
    const id = first.json().id as string;
    await api.app.taskStore.transition(id, 'SUCCESS', 1, { result: 'null', finished: Date.now() });
    const again = await post(key, { type: 'noop' });
    expect(again.statusCode).toBe(202);
    expect(again.json()).toEqual(first.json());
  });

  it('treats bodies that differ only in key order or spacing as the same request', async () => {
    const key = randomUUID();
    const first = await api.app.inject({
      method: 'POST',
      url: '/api/tasks',
      headers: { 'idempotency-key': key, 'content-type': 'application/json' },
      payload: '{"type":"sleep","kwargs":{"duration":0.5},"priority":3}',
    });
    const second = await api.app.inject({
      method: 'POST',
      url: '/api/tasks',
      headers: { 'idempotency-key': key, 'content-type': 'application/json' },
      payload: '{ "priority": 3, "kwargs": { "duration": 0.5 }, "type": "sleep" }',
    });
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(second.json().id).toBe(first.json().id);
  });

  it('answers 409 CNV_IDEMPOTENCY_CONFLICT for the same key with a different body, queuing nothing', async () => {
    const key = randomUUID();
    const first = await post(key, { type: 'greet', kwargs: { name: 'Ada' } });
    const before = await api.inspect.messageCount('default');
    const conflict = await post(key, { type: 'greet', kwargs: { name: 'Grace' } });
    expect(conflict.statusCode).toBe(409);
    expect(conflict.json()).toMatchObject({
      statusCode: 409,
      code: 'CNV_IDEMPOTENCY_CONFLICT',
      message: expect.stringContaining(first.json().id),
    });
    expect(await api.inspect.messageCount('default')).toBe(before);
  });

  it('keeps keys apart: different keys get different tasks; no key always a new task', async () => {
    const body = { type: 'noop' };
    const a = await post(randomUUID(), body);
    const b = await post(randomUUID(), body);
    expect(a.json().id).not.toBe(b.json().id);
    const c = await post(undefined, body);
    const d = await post(undefined, body);
    expect(c.json().id).not.toBe(d.json().id);
  });

  it('gives 30 concurrent identical requests one task: one submits, the others wait and replay', async () => {
    const key = randomUUID();
    const before = await api.inspect.messageCount('default');
    const responses = await Promise.all(
      Array.from({ length: 30 }, () => post(key, { type: 'reverse', kwargs: { text: 'once' } })),
    );
    expect(responses.map((r) => r.statusCode)).toEqual(Array(30).fill(202));
    expect(new Set(responses.map((r) => r.json().id)).size).toBe(1);
    expect(responses.filter((r) => r.headers['idempotent-replayed'] === 'true')).toHaveLength(29);
    expect(await api.inspect.messageCount('default')).toBe(before + 1);
  });

  it('waits for a claim in progress and replays its result once it is done', async () => {
    const key = randomUUID();
    const body = { type: 'noop' };
    const id = randomUUID();
    const claim = `${submissionHash(body)} ${id}`;
    await api.inspect.redis.set(keyOf(key), claim, 'EX', api.config.resultTtlSeconds);
    const pending = post(key, body);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const accepted = { id, type: 'noop', queue: 'default', state: 'PENDING', eta: null, expires: null };
    await api.inspect.redis.set(keyOf(key), `${claim} ${JSON.stringify(accepted)}`, 'KEEPTTL');
    const response = await pending;
    expect(response.statusCode).toBe(202);
    expect(response.headers['idempotent-replayed']).toBe('true');
    expect(response.json()).toEqual({ ...accepted, links: { self: `/api/tasks/${id}` } });
  });

  it('takes over a stale claim that left no task behind, and submits afresh', async () => {
    const key = randomUUID();
    const body = { type: 'noop' };
    const deadId = randomUUID();
    // A stale claim whose request died.
    await claimStale(key, body, deadId);
    const response = await post(key, body);
    expect(response.statusCode).toBe(202);
    expect(response.headers['idempotent-replayed']).toBeUndefined();
    const { id } = response.json<{ id: string }>();
    expect(id).not.toBe(deadId);
    expect(await api.inspect.redis.get(keyOf(key))).toMatch(new RegExp(`^\\w+ ${id} \\{`));
    expect(await api.inspect.redis.ttl(keyOf(key))).toBeGreaterThan(api.config.resultTtlSeconds - 60);
  });

  it('answers a stale claim whose task exists with that task', async () => {
    const key = randomUUID();
    const body = { type: 'noop' };
    // The claimant wrote the record and published, then died before marking the key done.
    const orphan = await post(undefined, body);
    const id = orphan.json().id as string;
    await claimStale(key, body, id);
    const response = await post(key, body);
    expect(response.statusCode).toBe(202);
    expect(response.headers['idempotent-replayed']).toBe('true');
    expect(response.json()).toEqual(orphan.json());
  });

  it('frees the key when the submission fails, so the retry succeeds with a new task', async () => {
    const key = randomUUID();
    const publisher = api.app.publisher;
    const original = publisher.publish.bind(publisher);
    publisher.publish = () => Promise.reject(new Error('broker refused'));
    let failed;
    try {
      failed = await post(key, { type: 'noop' });
    } finally {
      publisher.publish = original;
    }
    expect(failed.statusCode).toBe(503);
    expect(failed.json().code).toBe('CNV_BROKER_UNAVAILABLE');
    expect(await api.inspect.redis.exists(keyOf(key))).toBe(0);
    const retried = await post(key, { type: 'noop' });
    expect(retried.statusCode).toBe(202);
    expect(retried.headers['idempotent-replayed']).toBeUndefined();
  });

  it('validates the body before the key: a bad body is a 400 and leaves the key unused', async () => {
    const key = randomUUID();
    const bad = await post(key, { type: 'sleep', kwargs: {} });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('CNV_INVALID_KWARGS');
    expect(await api.inspect.redis.exists(keyOf(key))).toBe(0);
    expect((await post(key, { type: 'sleep', kwargs: { duration: 1 } })).statusCode).toBe(202);
  });

  it.each([
    ['empty', ''],
    ['too long', 'k'.repeat(201)],
    ['a control character', 'abc\u0001def'],
  ])('rejects a key that is %s with 400 CNV_INVALID_IDEMPOTENCY_KEY on field Idempotency-Key', async (_, key) => {
    const response = await post(key, { type: 'noop' });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: 'CNV_INVALID_IDEMPOTENCY_KEY', field: 'Idempotency-Key' });
  });

  it('accepts a key of exactly 200 printable characters, spaces inside included', async () => {
    const key = `a b~${'x'.repeat(196)}`;
    expect(key).toHaveLength(200);
    expect((await post(key, { type: 'noop' })).statusCode).toBe(202);
  });

  it('counts replays in /metrics', async () => {
    const metrics = (await api.app.inject({ method: 'GET', url: '/metrics' })).body;
    const replays = Number(/^conveyor_api_idempotent_replays_total(?:\{[^}]*\})? (\S+)$/m.exec(metrics)?.[1]);
    expect(replays).toBeGreaterThanOrEqual(33);
  });
});
