/**
 * Configuration for every Conveyor role, read from the environment once at
 * start-up, validated against a closed schema with explicit defaults, then
 * frozen. Nothing else in the code base reads `process.env`.
 */
import envSchema from 'env-schema';
import { availableParallelism } from 'node:os';
import { Errors } from './errors.js';

export type Role = 'api' | 'worker' | 'dashboard';

/** The port each role listens on when `PORT` is not set (DESIGN.md, "Roles and ports"). */
export const DEFAULT_PORTS: Readonly<Record<Role, number>> = { api: 8000, worker: 9091, dashboard: 5555 };

const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$';

const schema = {
  type: 'object',
  properties: {
    AMQP_URL: { type: 'string', pattern: '^amqps?://', default: 'amqp://guest:guest@localhost:5672' },
    REDIS_URL: { type: 'string', pattern: '^rediss?://', default: 'redis://localhost:6379/0' },
    CONVEYOR_PREFIX: { type: 'string', pattern: NAME_PATTERN, default: 'conveyor' },
    TASK_EXCHANGE: { type: 'string', pattern: NAME_PATTERN },
    TASK_QUEUES: { type: 'string', pattern: '^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*$', default: 'default' },
    WORKER_CONCURRENCY: { type: 'integer', minimum: 1, maximum: 1000, default: 4 },
    // Celery's default too. With 2×, slots sat idle under load while an ack went to the broker and the next delivery came back.
    WORKER_PREFETCH_MULTIPLIER: { type: 'integer', minimum: 1, maximum: 100, default: 4 },
    WORKER_NAME: { type: 'string', minLength: 1, maxLength: 200 },
    SHUTDOWN_GRACE_MS: { type: 'integer', minimum: 0, maximum: 3_600_000, default: 30_000 },
    MAX_REDELIVERIES: { type: 'integer', minimum: 0, maximum: 1000, default: 5 },
    WORKER_POOL_SIZE: { type: 'integer', minimum: 1, maximum: 256 },
    WORKER_HEAP_GROWING_PERCENT: { type: 'integer', minimum: 0, maximum: 1000, default: 30 },
    RESULT_TTL_SECONDS: { type: 'integer', minimum: 1, maximum: 31_536_000, default: 86_400 },
    MAX_BODY_BYTES: { type: 'integer', minimum: 1024, maximum: 64 * 1024 * 1024, default: 1_048_576 },
    SMTP_URL: { type: 'string', pattern: '^smtps?://', default: 'smtp://localhost:25' },
    SMTP_FROM: { type: 'string', minLength: 3, default: 'Conveyor <conveyor@localhost>' },
    LOG_LEVEL: {
      type: 'string',
      enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
      default: 'info',
    },
    PORT: { type: 'integer', minimum: 0, maximum: 65_535 },
    HOST: { type: 'string', minLength: 1, default: '127.0.0.1' },
  },
} as const;

export interface Config {
  readonly role: Role;
  readonly amqpUrl: string;
  readonly redisUrl: string;
  /** Namespace of every Redis key and AMQP name this installation owns. */
  readonly prefix: string;
  readonly exchange: string;
  /** Logical queue names (without the prefix); the api accepts and the worker consumes these. */
  readonly queues: readonly string[];
  readonly workerConcurrency: number;
  /**
   * Deliveries a worker holds unacked (WORKER_CONCURRENCY ×
   * WORKER_PREFETCH_MULTIPLIER): the ones beyond the concurrency wait in the
   * worker, so the next task is at hand the moment a slot frees.
   */
  readonly workerPrefetch: number;
  readonly workerName: string;
  readonly shutdownGraceMs: number;
  /**
   * Redeliveries (deliveries flagged `redelivered` by the broker) a message
   * may have before the worker dead-letters it as poison instead of running it.
   */
  readonly maxRedeliveries: number;
  /** Threads of the worker's pool for CPU-bound handlers (default: the CPUs available). */
  readonly workerPoolSize: number;
  /**
   * How far (%) the worker's V8 old generation may grow past what survived
   * its last full collection before the next one; 0 leaves it to V8.
   */
  readonly workerHeapGrowingPercent: number;
  readonly resultTtlSeconds: number;
  readonly maxBodyBytes: number;
  readonly smtpUrl: string;
  readonly smtpFrom: string;
  readonly logLevel: string;
  readonly port: number;
  readonly host: string;
}

interface RawEnv {
  AMQP_URL: string;
  REDIS_URL: string;
  CONVEYOR_PREFIX: string;
  TASK_EXCHANGE?: string;
  TASK_QUEUES: string;
  WORKER_CONCURRENCY: number;
  WORKER_PREFETCH_MULTIPLIER: number;
  WORKER_NAME?: string;
  SHUTDOWN_GRACE_MS: number;
  MAX_REDELIVERIES: number;
  WORKER_POOL_SIZE?: number;
  WORKER_HEAP_GROWING_PERCENT: number;
  RESULT_TTL_SECONDS: number;
  MAX_BODY_BYTES: number;
  SMTP_URL: string;
  SMTP_FROM: string;
  LOG_LEVEL: string;
  PORT?: number;
  HOST: string;
}

/**
 * Parses `env` for `role`. Throws `CNV_CONFIG_INVALID` naming the variable at
 * fault, so a bad deployment fails at start rather than on the first task.
 */
export function loadConfig(role: Role, env: NodeJS.ProcessEnv, hostname = 'localhost'): Config {
  let raw: RawEnv;
  try {
    raw = envSchema<RawEnv>({ schema: structuredClone(schema), data: { ...env }, env: false, dotenv: false });
  } catch (error) {
    // env-schema reports "env/NAME must be …": keep that, it names the variable.
    throw new Errors.CONFIG_INVALID((error as Error).message);
  }
  const queues = [...new Set(raw.TASK_QUEUES.split(','))];
  return Object.freeze({
    role,
    amqpUrl: raw.AMQP_URL,
    redisUrl: raw.REDIS_URL,
    prefix: raw.CONVEYOR_PREFIX,
    exchange: raw.TASK_EXCHANGE ?? `${raw.CONVEYOR_PREFIX}.tasks`,
    queues: Object.freeze(queues),
    workerConcurrency: raw.WORKER_CONCURRENCY,
    workerPrefetch: raw.WORKER_CONCURRENCY * raw.WORKER_PREFETCH_MULTIPLIER,
    workerName: raw.WORKER_NAME ?? `worker@${hostname}.${process.pid}`,
    shutdownGraceMs: raw.SHUTDOWN_GRACE_MS,
    maxRedeliveries: raw.MAX_REDELIVERIES,
    workerPoolSize: raw.WORKER_POOL_SIZE ?? availableParallelism(),
    workerHeapGrowingPercent: raw.WORKER_HEAP_GROWING_PERCENT,
    resultTtlSeconds: raw.RESULT_TTL_SECONDS,
    maxBodyBytes: raw.MAX_BODY_BYTES,
    smtpUrl: raw.SMTP_URL,
    smtpFrom: raw.SMTP_FROM,
    logLevel: raw.LOG_LEVEL,
    port: raw.PORT ?? DEFAULT_PORTS[role],
    host: raw.HOST,
  });
}

/**
 * For entry points: the config, or one line on stderr naming the variable at
 * fault and exit code 78 (EX_CONFIG), instead of a stack trace.
 */
export function loadConfigOrExit(role: Role, env: NodeJS.ProcessEnv, hostname?: string): Config {
  try {
    return loadConfig(role, env, hostname);
  } catch (error) {
    process.stderr.write(`conveyor ${role}: ${(error as Error).message}\n`);
    process.exit(78);
  }
}
