/**
 * Malformed requests: each gets its 4xx with a stable code and the field at
 * fault, and none of them queues a message or writes a Redis key.
 */
import type { InjectOptions } from 'fastify';
import { describe, expect, it } from 'vitest';
import { useApiApp } from './helpers.js';

const MAX_BODY_BYTES = 4096;
const api = useApiApp({ MAX_BODY_BYTES: String(MAX_BODY_BYTES) });

interface Case {
  name: string;
  request: InjectOptions;
  status: number;
  code: string;
  field?: string;
}

const post = (payload: unknown): InjectOptions => ({ method: 'POST', url: '/api/tasks', payload: payload as object });
const raw = (body: string, contentType = 'application/json'): InjectOptions => ({
  method: 'POST',
  url: '/api/tasks',
  headers: { 'content-type': contentType },
  payload: body,
});
const inOneYear = (extraMs: number) => new Date(Date.now() + 31_536_000_000 + extraMs).toISOString();

const cases: Case[] = [
  // Not JSON, or not the JSON we take.
  { name: 'truncated JSON', request: raw('{"type": "noop"'), status: 400, code: 'CNV_INVALID_JSON' },
  { name: 'empty JSON body', request: raw(''), status: 400, code: 'CNV_INVALID_JSON' },
  {
    name: 'prototype poisoning',
    request: raw('{"type":"noop","__proto__":{"x":1}}'),
    status: 400,
    code: 'CNV_INVALID_JSON',
  },
  {
    name: 'text/plain body',
    request: raw('{"type":"noop"}', 'text/plain'),
    status: 415,
    code: 'CNV_UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'form body',
    request: raw('type=noop', 'application/x-www-form-urlencoded'),
    status: 415,
    code: 'CNV_UNSUPPORTED_MEDIA_TYPE',
  },
  { name: 'array body', request: post([{ type: 'noop' }]), status: 400, code: 'CNV_INVALID_SUBMISSION' },
  { name: 'string body', request: raw('"noop"'), status: 400, code: 'CNV_INVALID_SUBMISSION' },
  { name: 'null body', request: raw('null'), status: 400, code: 'CNV_INVALID_SUBMISSION' },
  {
    name: 'no body at all',
    request: { method: 'POST', url: '/api/tasks' },
    status: 400,
    code: 'CNV_INVALID_SUBMISSION',
  },
  {
    name: 'body larger than MAX_BODY_BYTES',
    request: post({ type: 'reverse', kwargs: { text: 'x'.repeat(MAX_BODY_BYTES) } }),
    status: 413,
    code: 'CNV_BODY_TOO_LARGE',
  },
  // The envelope.
  { name: 'missing type', request: post({ kwargs: {} }), status: 400, code: 'CNV_INVALID_SUBMISSION', field: 'type' },
  { name: 'type is a number', request: post({ type: 5 }), status: 400, code: 'CNV_INVALID_SUBMISSION', field: 'type' },
  { name: 'empty type', request: post({ type: '' }), status: 400, code: 'CNV_INVALID_SUBMISSION', field: 'type' },
  {
    name: 'unknown type',
    request: post({ type: 'no.such.task' }),
    status: 400,
    code: 'CNV_UNKNOWN_TASK_TYPE',
    field: 'type',
  },
  {
    name: 'extra top-level field',
    request: post({ type: 'noop', args: [1] }),
    status: 400,
    code: 'CNV_INVALID_SUBMISSION',
    field: 'args',
  },
  {
    name: 'kwargs is an array',
    request: post({ type: 'noop', kwargs: [1] }),
    status: 400,
    code: 'CNV_INVALID_SUBMISSION',
    field: 'kwargs',
  },
  {
    name: 'negative countdown',
    request: post({ type: 'noop', countdown: -1 }),
    status: 400,
    code: 'CNV_INVALID_SUBMISSION',
    field: 'countdown',
  },
  {
    name: 'countdown over a year',
    request: post({ type: 'noop', countdown: 31_536_001 }),
    status: 400,
    code: 'CNV_INVALID_SUBMISSION',
    field: 'countdown',
  },
  {
    name: 'countdown as a string',
    request: post({ type: 'noop', countdown: '10' }),
    status: 400,
    code: 'CNV_INVALID_SUBMISSION',
    field: 'countdown',
  },
  {
    name: 'countdown and eta together',
    request: post({ type: 'noop', countdown: 10, eta: new Date(Date.now() + 60_000).toISOString() }),
    status: 400,
    code: 'CNV_INVALID_SUBMISSION',
    field: 'countdown',
  },
  {
    name: 'eta not a date',
    request: post({ type: 'noop', eta: 'tomorrow' }),
    status: 400,
    code: 'CNV_INVALID_SUBMISSION',
    field: 'eta',
  },
  {
    name: 'eta without a time zone',
    request: post({ type: 'noop', eta: '2030-01-01T00:00:00' }),
    status: 400,
    code: 'CNV_INVALID_SUBMISSION',
    field: 'eta',
  },
  {
    name: 'eta over a year ahead',
    request: post({ type: 'noop', eta: inOneYear(60_000) }),
    status: 400,
    code: 'CNV_INVALID_SUBMISSION',
    field: 'eta',
  },
  {
    name: 'expires zero',
    request: post({ type: 'noop', expires: 0 }),
    status: 400,
    code: 'CNV_INVALID_SUBMISSION',
    field: 'expires',
  },
  {
    name: 'expires in the past',
    request: post({ type: 'noop', expires: '2001-01-01T00:00:00Z' }),
    status: 400,
    code: 'CNV_INVALID_SUBMISSION',
    field: 'expires',
  },
  {
    name: 'expires before eta',
    request: post({ type: 'noop', countdown: 60, expires: 30 }),
    status: 400,
    code: 'CNV_INVALID_SUBMISSION',
    field: 'expires',
  },
  {
    name: 'unknown queue',
    request: post({ type: 'noop', queue: 'elsewhere' }),
    status: 400,
    code: 'CNV_UNKNOWN_QUEUE',
    field: 'queue',
  },
  {
    name: 'priority 300',
    request: post({ type: 'noop', priority: 300 }),
    status: 400,
    code: 'CNV_INVALID_SUBMISSION',
    field: 'priority',
  },
  {
    name: 'fractional priority',
    request: post({ type: 'noop', priority: 1.5 }),
    status: 400,
    code: 'CNV_INVALID_SUBMISSION',
    field: 'priority',
  },
  // The kwargs, checked against each type's schema.
  {
    name: 'noop with kwargs',
    request: post({ type: 'noop', kwargs: { a: 1 } }),
    status: 400,
    code: 'CNV_INVALID_KWARGS',
    field: 'kwargs.a',
  },
  {
    name: 'sleep without duration',
    request: post({ type: 'sleep' }),
    status: 400,
    code: 'CNV_INVALID_KWARGS',
    field: 'kwargs.duration',
  },
  {
    name: 'sleep for -1 s',
    request: post({ type: 'sleep', kwargs: { duration: -1 } }),
    status: 400,
    code: 'CNV_INVALID_KWARGS',
    field: 'kwargs.duration',
  },
  {
    name: 'sleep duration as a string',
    request: post({ type: 'sleep', kwargs: { duration: '5' } }),
    status: 400,
    code: 'CNV_INVALID_KWARGS',
    field: 'kwargs.duration',
  },
  {
    name: 'greet with an empty name',
    request: post({ type: 'greet', kwargs: { name: '' } }),
    status: 400,
    code: 'CNV_INVALID_KWARGS',
    field: 'kwargs.name',
  },
  {
    name: 'compute factorial beyond its own bound',
    request: post({ type: 'compute', kwargs: { operation: 'factorial', input: 5001 } }),
    status: 400,
    code: 'CNV_INVALID_KWARGS',
    field: 'kwargs.input',
  },
  {
    name: 'compute with an unknown operation',
    request: post({ type: 'compute', kwargs: { operation: 'cube', input: 3 } }),
    status: 400,
    code: 'CNV_INVALID_KWARGS',
    field: 'kwargs.operation',
  },
  {
    name: 'compute with a fractional input',
    request: post({ type: 'compute', kwargs: { operation: 'is_prime', input: 7.5 } }),
    status: 400,
    code: 'CNV_INVALID_KWARGS',
    field: 'kwargs.input',
  },
  {
    name: 'email.send to a non-address',
    request: post({ type: 'email.send', kwargs: { to: 'not-an-address', subject: 's', text: 't' } }),
    status: 400,
    code: 'CNV_INVALID_KWARGS',
    field: 'kwargs.to',
  },
  // Reading.
  {
    name: 'GET a non-UUID id',
    request: { method: 'GET', url: '/api/tasks/12345' },
    status: 400,
    code: 'CNV_INVALID_TASK_ID',
    field: 'id',
  },
  {
    name: 'GET an unknown id',
    request: { method: 'GET', url: '/api/tasks/00000000-0000-4000-8000-000000000000' },
    status: 404,
    code: 'CNV_TASK_NOT_FOUND',
  },
  {
    name: 'GET with wait beyond 30 s',
    request: { method: 'GET', url: '/api/tasks/00000000-0000-4000-8000-000000000000?wait=31' },
    status: 400,
    code: 'CNV_INVALID_SUBMISSION',
    field: 'wait',
  },
  {
    name: 'GET with a non-numeric wait',
    request: { method: 'GET', url: '/api/tasks/00000000-0000-4000-8000-000000000000?wait=soon' },
    status: 400,
    code: 'CNV_INVALID_SUBMISSION',
    field: 'wait',
  },
];

describe('malformed requests', () => {
  it.each(cases)('$name → $status $code', async ({ request, status, code, field }) => {
    const queued = await api.inspect.messageCount('default');
    const keys = await api.inspect.keys();

    const response = await api.app.inject(request);

    expect(response.statusCode).toBe(status);
    const body = response.json();
    expect(body).toMatchObject({ statusCode: status, code, error: expect.any(String), message: expect.any(String) });
    if (field === undefined) expect(body).not.toHaveProperty('field');
    else expect(body.field).toBe(field);
    expect(await api.inspect.messageCount('default')).toBe(queued);
    expect(await api.inspect.keys()).toEqual(keys);
  });

  it('left nothing behind at all', async () => {
    expect(await api.inspect.messageCount('default')).toBe(0);
    expect(await api.inspect.keys()).toEqual([]);
  });
});
