/**
 * Celery message protocol v2 (JSON), the wire format of every task on the
 * broker, so that Python Celery producers and workers can share queues with
 * Conveyor. Metadata lives in AMQP headers (tools route and display without
 * decoding the body); the body is `[args, kwargs, embed]`.
 *
 * `timelimit` is `[hard, soft]` seconds: Celery's code uses that order
 * (`as_task_v2`, `worker/request.py`), its protocol document the reverse.
 */
import type { MessageProperties } from 'amqplib';
import { Errors } from '../errors.js';
import { parseRetryOverride } from '../tasks/retry-policy.js';
import type { RetryPolicy } from '../tasks/task-type.js';

export const TASK_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const REPR_MAX_CHARS = 1024;

/**
 * Conveyor's own header (not Celery's): a per-submission override of the
 * type's retry policy, `{maxRetries?, baseDelayMs?, maxDelayMs?}`. A Celery
 * worker ignores it; every retry Conveyor publishes carries it on.
 */
export const RETRY_POLICY_HEADER = 'x-conveyor-retry';

export interface Signature {
  task: string;
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  options?: Record<string, unknown>;
  subtask_type?: string | null;
  immutable?: boolean;
}

export interface Embed {
  callbacks: Signature[] | null;
  errbacks: Signature[] | null;
  chain: Signature[] | null;
  chord: Signature | null;
}

export interface TaskMessage {
  id: string;
  /** The task type name (`task` header). */
  task: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  /** Retries already made: 0 on the first attempt. */
  retries: number;
  /** ISO-8601 UTC; the task must not start before it. */
  eta: string | null;
  /** ISO-8601 UTC; a task received after it is revoked, not run. */
  expires: string | null;
  /** [hard, soft] seconds. */
  timelimit: [number | null, number | null];
  rootId: string;
  parentId: string | null;
  group: string | null;
  origin: string;
  lang: string;
  priority?: number;
  /** Overrides of the type's retry policy for this task (header `x-conveyor-retry`). */
  retryPolicy?: Partial<RetryPolicy>;
  embed: Embed;
}

const EMPTY_EMBED: Embed = Object.freeze({ callbacks: null, errbacks: null, chain: null, chord: null });

export function newTaskMessage(
  fields: Pick<TaskMessage, 'id' | 'task' | 'kwargs' | 'origin'> & Partial<TaskMessage>,
): TaskMessage {
  return {
    args: [],
    retries: 0,
    eta: null,
    expires: null,
    timelimit: [null, null],
    rootId: fields.id,
    parentId: null,
    group: null,
    lang: 'js',
    embed: EMPTY_EMBED,
    ...fields,
  };
}

/** The AMQP properties this protocol reads, typed (amqplib types them `any`). */
export interface TaskProperties {
  contentType?: string;
  contentEncoding?: string;
  correlationId?: string;
  priority?: number;
  headers?: Record<string, unknown>;
}

/**
 * The publish options of a task message: these fields only, headers always
 * set (TaskPublisher sends them to amqplib's encoder as they are).
 */
export interface TaskPublishOptions {
  contentType?: string;
  contentEncoding?: string;
  correlationId?: string;
  deliveryMode: 2;
  priority?: number;
  headers: Record<string, unknown>;
}

export interface EncodedMessage {
  content: Buffer;
  options: TaskPublishOptions;
  /** The same object as `options.headers`, typed, for callers that add routing headers. */
  headers: Record<string, unknown>;
}

export function encodeTask(message: TaskMessage): EncodedMessage {
  const kwargsJson = JSON.stringify(message.kwargs);
  const argsJson = JSON.stringify(message.args);
  const content = Buffer.from(`[${argsJson},${kwargsJson},${JSON.stringify(message.embed)}]`);
  const headers: Record<string, unknown> = {
    lang: message.lang,
    task: message.task,
    id: message.id,
    root_id: message.rootId,
    parent_id: message.parentId,
    group: message.group,
    retries: message.retries,
    eta: message.eta,
    expires: message.expires,
    timelimit: message.timelimit,
    argsrepr: truncate(argsJson),
    kwargsrepr: truncate(kwargsJson),
    origin: message.origin,
  };
  if (message.retryPolicy !== undefined) {
    // AMQP tables cannot hold undefined: send only the fields that are set.
    const override: Record<string, number> = {};
    for (const [field, value] of Object.entries(message.retryPolicy)) {
      if (typeof value === 'number') override[field] = value;
    }
    headers[RETRY_POLICY_HEADER] = override;
  }
  const options: TaskPublishOptions = {
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    correlationId: message.id,
    deliveryMode: 2,
    headers,
  };
  if (message.priority !== undefined) options.priority = message.priority;
  return { content, options, headers };
}

/**
 * Decodes and validates a delivery. Throws `CNV_INVALID_MESSAGE` with the
 * reason; the worker dead-letters such a message and keeps going.
 */
export function decodeTask(content: Buffer, amqpProperties: MessageProperties): TaskMessage {
  const properties = amqpProperties as TaskProperties;
  const headers = properties.headers ?? {};
  if (properties.contentType !== 'application/json') {
    throw invalid(`content_type must be application/json, got ${String(properties.contentType)}`);
  }
  const encoding = properties.contentEncoding;
  if (encoding !== undefined && encoding !== 'utf-8' && encoding !== 'utf8') {
    throw invalid(`content_encoding must be utf-8, got ${String(encoding)}`);
  }
  const task = headers.task;
  if (typeof task !== 'string' || task === '') throw invalid('missing "task" header (not protocol v2)');
  const id = headers.id ?? properties.correlationId;
  if (typeof id !== 'string' || !TASK_ID_PATTERN.test(id)) throw invalid('"id" header must be a UUID');

  let body: unknown;
  try {
    body = JSON.parse(content.toString('utf8'));
  } catch {
    throw invalid('body is not valid JSON');
  }
  if (!Array.isArray(body) || body.length !== 3) throw invalid('body must be [args, kwargs, embed]');
  const [args, kwargs, embed] = body as [unknown, unknown, unknown];
  if (!Array.isArray(args)) throw invalid('args must be an array');
  if (!isPlainObject(kwargs)) throw invalid('kwargs must be an object');
  if (embed !== null && !isPlainObject(embed)) throw invalid('embed must be an object');

  const retries = headers.retries ?? 0;
  if (typeof retries !== 'number' || !Number.isInteger(retries) || retries < 0) {
    throw invalid('"retries" header must be a non-negative integer');
  }
  const message: TaskMessage = {
    id,
    task,
    args,
    kwargs,
    retries,
    eta: optionalDate(headers.eta, 'eta'),
    expires: optionalDate(headers.expires, 'expires'),
    timelimit: timeLimitOf(headers.timelimit),
    rootId: optionalString(headers.root_id, 'root_id') ?? id,
    parentId: optionalString(headers.parent_id, 'parent_id'),
    group: optionalString(headers.group, 'group'),
    origin: optionalString(headers.origin, 'origin') ?? '',
    lang: optionalString(headers.lang, 'lang') ?? 'py',
    embed: { ...EMPTY_EMBED, ...(embed as Partial<Embed> | null) },
  };
  if (typeof properties.priority === 'number') message.priority = properties.priority;
  const retryHeader = headers[RETRY_POLICY_HEADER];
  if (retryHeader !== undefined && retryHeader !== null) {
    const parsed = parseRetryOverride(retryHeader);
    if (!parsed.ok) throw invalid(`"${RETRY_POLICY_HEADER}" header ${parsed.reason}`);
    message.retryPolicy = parsed.value;
  }
  return message;
}

function invalid(reason: string): Error {
  return new Errors.INVALID_MESSAGE(reason);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalString(value: unknown, name: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw invalid(`"${name}" header must be a string`);
  return value;
}

function optionalDate(value: unknown, name: string): string | null {
  const text = optionalString(value, name);
  if (text !== null && Number.isNaN(Date.parse(text))) throw invalid(`"${name}" header must be an ISO-8601 date`);
  return text;
}

function timeLimitOf(value: unknown): [number | null, number | null] {
  if (value === undefined || value === null) return [null, null];
  const ok = (v: unknown) => v === null || (typeof v === 'number' && v > 0);
  if (!Array.isArray(value) || value.length !== 2 || !ok(value[0]) || !ok(value[1])) {
    throw invalid('"timelimit" header must be [hard, soft] seconds or nulls');
  }
  return [value[0] as number | null, value[1] as number | null];
}

function truncate(text: string): string {
  return text.length <= REPR_MAX_CHARS ? text : `${text.slice(0, REPR_MAX_CHARS - 3)}...`;
}
