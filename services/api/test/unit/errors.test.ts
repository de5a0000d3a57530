/** The error-to-body mapping on its own: codes, fields, and what 5xx bodies leave out. */
import { Errors, withField } from '@conveyor/shared';
import type { FastifyRequest } from 'fastify';
import { describe, expect, it } from 'vitest';
import { errorBodyOf } from '../../src/errors.js';

const request = { headers: {}, routeOptions: { bodyLimit: 1024 } } as unknown as FastifyRequest;

describe('errorBodyOf', () => {
  it('hides the message of an unexpected error', () => {
    expect(errorBodyOf(new Error('password=hunter2 at db.internal:5432'), request)).toEqual({
      statusCode: 500,
      code: 'CNV_INTERNAL',
      error: 'Internal Server Error',
      message: 'Internal server error',
    });
  });

  it('hides a 5xx of ours that is not a retryable outage', () => {
    const error = Object.assign(new Error('upstream 10.0.0.7 refused'), { code: 'CNV_SOMETHING', statusCode: 502 });
    expect(errorBodyOf(error, request)).toMatchObject({
      statusCode: 500,
      code: 'CNV_INTERNAL',
      message: 'Internal server error',
    });
  });

  it('keeps the code and field of a 4xx of ours', () => {
    expect(errorBodyOf(withField(new Errors.UNKNOWN_QUEUE('q'), 'queue'), request)).toEqual({
      statusCode: 400,
      code: 'CNV_UNKNOWN_QUEUE',
      error: 'Bad Request',
      message: 'Queue "q" is not served by this installation',
      field: 'queue',
    });
  });

  it('passes the two retryable 503s through', () => {
    expect(errorBodyOf(new Errors.STORE_UNAVAILABLE('try again later'), request)).toMatchObject({
      statusCode: 503,
      code: 'CNV_STORE_UNAVAILABLE',
    });
  });

  it('maps Fastify client errors without a code of ours to CNV_BAD_REQUEST', () => {
    const error = Object.assign(new Error('Request body size did not match Content-Length'), {
      code: 'FST_ERR_CTP_INVALID_CONTENT_LENGTH',
      statusCode: 400,
    });
    expect(errorBodyOf(error, request)).toMatchObject({ statusCode: 400, code: 'CNV_BAD_REQUEST' });
  });
});
