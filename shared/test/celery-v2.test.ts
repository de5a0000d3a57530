import type { MessageProperties } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { decodeTask, encodeTask, newTaskMessage, RETRY_POLICY_HEADER } from '../src/protocol/celery-v2.js';
import { resolveRetryPolicy } from '../src/tasks/retry-policy.js';
import { DEFAULT_RETRY } from '../src/tasks/task-type.js';

const ID = '5b0c4a6e-9d7e-4c21-9f55-0a1b2c3d4e5f';

function roundTrip(content: Buffer, options: object) {
  return decodeTask(content, options as unknown as MessageProperties);
}

describe('Celery protocol v2 codec', () => {
  it('encodes the properties, headers and body Celery expects', () => {
    const message = newTaskMessage({ id: ID, task: 'greet', kwargs: { name: 'Ada' }, origin: 'api@host' });
    message.timelimit = [60, 30];
    const { content, options } = encodeTask(message);
    expect(JSON.parse(content.toString())).toEqual([
      [],
      { name: 'Ada' },
      { callbacks: null, errbacks: null, chain: null, chord: null },
    ]);
    expect(options).toMatchObject({
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      correlationId: ID,
      deliveryMode: 2,
    });
    expect(options.headers).toEqual({
      lang: 'js',
      task: 'greet',
      id: ID,
      root_id: ID,
      parent_id: null,
      group: null,
      retries: 0,
      eta: null,
      expires: null,
      timelimit: [60, 30],
      argsrepr: '[]',
      kwargsrepr: '{"name":"Ada"}',
      origin: 'api@host',
    });
  });

  it('decodes what it encodes', () => {
    const message = newTaskMessage({
      id: ID,
      task: 'sleep',
      kwargs: { duration: 1 },
      origin: 'o',
      eta: '2030-01-01T00:00:00.000Z',
      retries: 2,
      priority: 5,
    });
    const { content, options } = encodeTask(message);
    expect(roundTrip(content, options)).toEqual(message);
  });

  it('truncates long reprs but never the body', () => {
    const text = 'x'.repeat(5000);
    const { content, headers } = encodeTask(newTaskMessage({ id: ID, task: 'reverse', kwargs: { text }, origin: 'o' }));
    expect((headers.kwargsrepr as string).length).toBe(1024);
    expect(JSON.parse(content.toString())[1].text).toBe(text);
  });

  it('accepts a message as Python Celery 5 sends it', () => {
    const headers = {
      lang: 'py',
      task: 'greet',
      id: ID,
      shadow: null,
      eta: null,
      expires: null,
      group: null,
      group_index: null,
      retries: 0,
      timelimit: [null, null],
      root_id: ID,
      parent_id: null,
      argsrepr: '()',
      kwargsrepr: "{'name': 'Ada'}",
      origin: 'gen1@host',
      ignore_result: false,
    };
    const body = Buffer.from(
      JSON.stringify([[], { name: 'Ada' }, { callbacks: null, errbacks: null, chain: null, chord: null }]),
    );
    const decoded = roundTrip(body, {
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      correlationId: ID,
      headers,
    });
    expect(decoded).toMatchObject({ id: ID, task: 'greet', kwargs: { name: 'Ada' }, lang: 'py', origin: 'gen1@host' });
  });

  const valid = { contentType: 'application/json', contentEncoding: 'utf-8', headers: { task: 'noop', id: ID } };
  const body = Buffer.from('[[],{},{}]');
  it.each([
    ['not JSON', Buffer.from('{nope'), valid, 'body is not valid JSON'],
    ['not an array', Buffer.from('{}'), valid, 'body must be [args, kwargs, embed]'],
    ['kwargs not an object', Buffer.from('[[],[],{}]'), valid, 'kwargs must be an object'],
    ['no task header', body, { ...valid, headers: { id: ID } }, 'missing "task" header'],
    ['bad id', body, { ...valid, headers: { task: 'noop', id: '42' } }, '"id" header must be a UUID'],
    ['pickle', body, { ...valid, contentType: 'application/x-python-serialize' }, 'content_type'],
    ['bad eta', body, { ...valid, headers: { task: 'noop', id: ID, eta: 'soon' } }, '"eta" header'],
    ['bad retries', body, { ...valid, headers: { task: 'noop', id: ID, retries: -1 } }, '"retries" header'],
    ['bad timelimit', body, { ...valid, headers: { task: 'noop', id: ID, timelimit: [1] } }, '"timelimit" header'],
    [
      'retry override not an object',
      body,
      { ...valid, headers: { task: 'noop', id: ID, [RETRY_POLICY_HEADER]: 3 } },
      '"x-conveyor-retry" header must be an object',
    ],
    [
      'negative retry count',
      body,
      { ...valid, headers: { task: 'noop', id: ID, [RETRY_POLICY_HEADER]: { maxRetries: -1 } } },
      'maxRetries must be an integer',
    ],
    [
      'fractional delay',
      body,
      { ...valid, headers: { task: 'noop', id: ID, [RETRY_POLICY_HEADER]: { baseDelayMs: 1.5 } } },
      'baseDelayMs must be an integer',
    ],
  ])('rejects %s with a reason', (_name, content, properties, reason) => {
    expect(() => roundTrip(content, properties)).toThrow(
      expect.objectContaining({ code: 'CNV_INVALID_MESSAGE', message: expect.stringContaining(reason) }),
    );
  });
});

describe('retry policy override (x-conveyor-retry)', () => {
  it('is absent from the headers unless given', () => {
    const { headers } = encodeTask(newTaskMessage({ id: ID, task: 'noop', kwargs: {}, origin: 'o' }));
    expect(headers).not.toHaveProperty(RETRY_POLICY_HEADER);
  });

  it('travels in its own header, only the fields that are set, and decodes back', () => {
    const message = newTaskMessage({
      id: ID,
      task: 'flaky',
      kwargs: { failures: 10 },
      origin: 'o',
      retryPolicy: { maxRetries: 3, baseDelayMs: undefined, maxDelayMs: 500 },
    });
    const { content, options, headers } = encodeTask(message);
    expect(headers[RETRY_POLICY_HEADER]).toEqual({ maxRetries: 3, maxDelayMs: 500 });
    expect(roundTrip(content, options).retryPolicy).toEqual({ maxRetries: 3, maxDelayMs: 500 });
  });

  it('ignores unknown fields and nulls', () => {
    const decoded = roundTrip(Buffer.from('[[],{},{}]'), {
      contentType: 'application/json',
      headers: { task: 'noop', id: ID, [RETRY_POLICY_HEADER]: { maxRetries: 2, baseDelayMs: null, colour: 'red' } },
    });
    expect(decoded.retryPolicy).toEqual({ maxRetries: 2 });
  });

  it('overrides only the fields it sets when merged over the type policy', () => {
    expect(resolveRetryPolicy(DEFAULT_RETRY, { maxRetries: 3 })).toEqual({ ...DEFAULT_RETRY, maxRetries: 3 });
    expect(resolveRetryPolicy(DEFAULT_RETRY, {})).toEqual(DEFAULT_RETRY);
    expect(resolveRetryPolicy(DEFAULT_RETRY)).toBe(DEFAULT_RETRY);
    expect(resolveRetryPolicy(DEFAULT_RETRY, { baseDelayMs: 5, maxDelayMs: 10, maxRetries: 0 })).toEqual({
      maxRetries: 0,
      baseDelayMs: 5,
      maxDelayMs: 10,
    });
  });
});
