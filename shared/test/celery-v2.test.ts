import type { MessageProperties } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { decodeTask, encodeTask, newTaskMessage } from '../src/protocol/celery-v2.js';

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
  ])('rejects %s with a reason', (_name, content, properties, reason) => {
    expect(() => roundTrip(content, properties)).toThrow(
      expect.objectContaining({ code: 'CNV_INVALID_MESSAGE', message: expect.stringContaining(reason) }),
    );
  });
});
