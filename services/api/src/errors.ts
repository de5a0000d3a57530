/**
 * How the api turns any error into a response. One body shape for every
 * error, `{ statusCode, code, error, message, field? }`, with a stable `CNV_`
 * code that clients and tests match on. 4xx bodies say what was wrong and
 * where; 5xx bodies hide internals, except the two "unavailable" 503s, which
 * tell the client to come back (Retry-After).
 */
import { STATUS_CODES } from 'node:http';
import { Errors } from '@conveyor/shared';
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchemaValidationError } from 'fastify';
import Type, { type Static } from 'typebox';

/** Seconds a client should wait before retrying after a 503: about one broker reconnect cycle. */
export const RETRY_AFTER_SECONDS = 5;

export const ErrorBody = Type.Object(
  {
    statusCode: Type.Integer(),
    code: Type.String({ description: 'Stable error code (CNV_…)' }),
    error: Type.String({ description: 'HTTP reason phrase' }),
    message: Type.String(),
    field: Type.Optional(Type.String({ description: 'The request field at fault, e.g. `kwargs.duration`' })),
  },
  { additionalProperties: false },
);
export type ErrorBody = Static<typeof ErrorBody>;

/** Response schemas for the error statuses every route can produce. */
export const errorResponses = { 400: ErrorBody, 404: ErrorBody, 500: ErrorBody } as const;

const RETRYABLE: ReadonlySet<string> = new Set(['CNV_BROKER_UNAVAILABLE', 'CNV_STORE_UNAVAILABLE']);

/** Errors Fastify raises itself before a handler runs, mapped to our codes. */
const FRAMEWORK_ERRORS: Readonly<Record<string, (request: FastifyRequest) => Error>> = {
  FST_ERR_CTP_INVALID_JSON_BODY: () => new Errors.INVALID_JSON(),
  FST_ERR_CTP_EMPTY_JSON_BODY: () => new Errors.INVALID_JSON(),
  FST_ERR_CTP_BODY_TOO_LARGE: (request) => new Errors.BODY_TOO_LARGE(request.routeOptions.bodyLimit),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: (request) =>
    new Errors.UNSUPPORTED_MEDIA_TYPE(
      request.headers['content-type'] === undefined ? '(none)' : JSON.stringify(request.headers['content-type']),
    ),
};

interface CodedError extends Error {
  code?: unknown;
  statusCode?: unknown;
  field?: unknown;
  validation?: FastifySchemaValidationError[];
  validationContext?: string;
}

/** The response body (and status) for `error`. */
export function errorBodyOf(raw: unknown, request: FastifyRequest): ErrorBody {
  let error = (raw instanceof Error ? raw : new Error(String(raw))) as CodedError;
  if (error.validation) return validationBody(error.validation, error.validationContext);
  const mapped = typeof error.code === 'string' ? FRAMEWORK_ERRORS[error.code] : undefined;
  if (mapped) error = mapped(request);

  const status = typeof error.statusCode === 'number' ? error.statusCode : 500;
  const ours = typeof error.code === 'string' && error.code.startsWith('CNV_');
  if (status >= 400 && status < 500) {
    return body(
      status,
      ours ? (error.code as string) : 'CNV_BAD_REQUEST',
      error.message,
      typeof error.field === 'string' ? error.field : undefined,
    );
  }
  if (ours && RETRYABLE.has(error.code as string)) return body(status, error.code as string, error.message);
  return body(500, 'CNV_INTERNAL', new Errors.INTERNAL().message);
}

export function registerErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const payload = errorBodyOf(error, request);
    if (RETRYABLE.has(payload.code)) {
      // An outage, not a bug: the reconnect logs say why; one warning per refused request is enough.
      request.log.warn({ err: error }, 'request refused: dependency unavailable');
      void reply.header('Retry-After', String(RETRY_AFTER_SECONDS));
    } else if (payload.statusCode >= 500) {
      request.log.error({ err: error }, 'request failed');
    }
    return reply.code(payload.statusCode).send(payload);
  });
  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) => {
    const error = new Errors.ROUTE_NOT_FOUND(request.method, request.url.split('?')[0]);
    return reply.code(404).send(body(404, error.code, error.message));
  });
}

function body(statusCode: number, code: string, message: string, field?: string): ErrorBody {
  const payload: ErrorBody = { statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message };
  if (field !== undefined) payload.field = field;
  return payload;
}

/**
 * A schema violation as CNV_INVALID_SUBMISSION naming the field at fault.
 * Path params get no prefix (`id`), like body fields (`countdown`, `kwargs`).
 */
function validationBody(errors: FastifySchemaValidationError[], context: string | undefined): ErrorBody {
  const first = errors[0];
  if (!first) return body(400, 'CNV_INVALID_SUBMISSION', `${context ?? 'request'} is invalid`);
  const path = first.instancePath.split('/').filter(Boolean);
  const { params } = first;
  // A missing or an extra property is reported on the object holding it; name the property itself.
  const named = firstOf(params.requiredProperties) ?? firstOf(params.additionalProperties) ?? params.missingProperty;
  if (typeof named === 'string') path.push(named);
  const field = path.length > 0 ? path.join('.') : undefined;
  let message: string;
  if (first.keyword === 'required') message = `${field} is required`;
  else if (first.keyword === 'additionalProperties' || (first.keyword === 'boolean' && path.length > 0)) {
    message = `${field} is not allowed`;
  } else message = `${field ?? context ?? 'request'} ${first.message ?? 'is invalid'}`;
  if (field === undefined && context === 'body' && first.keyword === 'type') message = 'body must be a JSON object';
  return body(400, 'CNV_INVALID_SUBMISSION', message, field);
}

function firstOf(value: unknown): unknown {
  return Array.isArray(value) ? value[0] : undefined;
}
