/**
 * The built-in task types. They cover the flows of the systems Conveyor
 * replaces (sleep, compute, greet, reverse, sentiment, email, fail) and what
 * tests and benchmarks need (noop, flaky, hang). Each has exactly one handler in
 * services/worker/src/handlers.
 */
import Type from 'typebox';
import { defineTaskType } from './task-type.js';

export const noop = defineTaskType({
  name: 'noop',
  description: 'Does nothing and returns null: the cost of the pipeline itself.',
  kwargs: Type.Object({}, { additionalProperties: false }),
});

export const sleep = defineTaskType({
  name: 'sleep',
  description: 'Waits `duration` seconds, then returns "Processed for N seconds."',
  kwargs: Type.Object({ duration: Type.Number({ minimum: 0, maximum: 3600 }) }, { additionalProperties: false }),
  timeLimit: { softSeconds: null, hardSeconds: 3660 },
});

/** Per-operation input bounds keep a single task to about a second of CPU. */
export const COMPUTE_LIMITS = {
  sum_range: 100_000_000,
  factorial: 5000,
  fibonacci: 20_000,
  is_prime: Number.MAX_SAFE_INTEGER,
} as const;
export type ComputeOperation = keyof typeof COMPUTE_LIMITS;

export const compute = defineTaskType({
  name: 'compute',
  description:
    'CPU work: sum_range (0+1+…+input-1), factorial, fibonacci or is_prime. Integers beyond 2^53 come back as decimal strings.',
  kwargs: Type.Object(
    {
      operation: Type.Union([
        Type.Literal('sum_range'),
        Type.Literal('factorial'),
        Type.Literal('fibonacci'),
        Type.Literal('is_prime'),
      ]),
      input: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    },
    {
      additionalProperties: false,
      // Ajv reports "/input must be <= N" for the operation's own bound.
      allOf: Object.entries(COMPUTE_LIMITS).map(([operation, maximum]) => ({
        if: { required: ['operation'], properties: { operation: { const: operation } } },
        then: { properties: { input: { maximum } } },
      })),
    },
  ),
  timeLimit: { softSeconds: 60, hardSeconds: 120 },
});

export const greet = defineTaskType({
  name: 'greet',
  description: 'Returns "Hello <name>".',
  kwargs: Type.Object({ name: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false }),
});

export const reverse = defineTaskType({
  name: 'reverse',
  description: 'Returns `text` reversed (by Unicode code point).',
  kwargs: Type.Object({ text: Type.String({ maxLength: 100_000 }) }, { additionalProperties: false }),
});

export const sentiment = defineTaskType({
  name: 'sentiment',
  description: 'Scores English `text` with the AFINN-165 lexicon: { score, comparative, label }.',
  kwargs: Type.Object({ text: Type.String({ minLength: 1, maxLength: 100_000 }) }, { additionalProperties: false }),
});

export const emailSend = defineTaskType({
  name: 'email.send',
  description: 'Sends a plain-text email over SMTP (SMTP_URL); returns { messageId, accepted, rejected }.',
  kwargs: Type.Object(
    {
      to: Type.String({ format: 'email', maxLength: 320 }),
      subject: Type.String({ minLength: 1, maxLength: 998 }),
      text: Type.String({ maxLength: 1_000_000 }),
    },
    { additionalProperties: false },
  ),
  retry: { maxRetries: 3, baseDelayMs: 2000, maxDelayMs: 60_000 },
  timeLimit: { softSeconds: 30, hardSeconds: 60 },
});

export const fail = defineTaskType({
  name: 'fail',
  description: 'Always fails, with `message` or "Simulated task failure".',
  kwargs: Type.Object({ message: Type.Optional(Type.String({ maxLength: 10_000 })) }, { additionalProperties: false }),
});

export const flaky = defineTaskType({
  name: 'flaky',
  description:
    'Fails its first `failures` attempts (CNV_SIMULATED_FAILURE), then returns { attempts }: exercises retries and backoff.',
  kwargs: Type.Object({ failures: Type.Integer({ minimum: 0, maximum: 100 }) }, { additionalProperties: false }),
  // Short delays so a test sees five retries within a few seconds.
  retry: { maxRetries: 5, baseDelayMs: 200, maxDelayMs: 2000 },
});

export const hang = defineTaskType({
  name: 'hang',
  description:
    'Runs `seconds` without ever looking at its abort signal: sleeping, or with `cpu: true` busy-looping in the worker thread pool. Exercises time limits and revocation.',
  kwargs: Type.Object(
    { seconds: Type.Number({ minimum: 0, maximum: 3600 }), cpu: Type.Optional(Type.Boolean()) },
    { additionalProperties: false },
  ),
  // Short enough that a test sees both limits quickly; a message's timelimit header overrides them.
  timeLimit: { softSeconds: 5, hardSeconds: 10 },
});

export const builtinTaskTypes = [
  noop,
  sleep,
  compute,
  greet,
  reverse,
  sentiment,
  emailSend,
  fail,
  flaky,
  hang,
] as const;
