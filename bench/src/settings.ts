/**
 * What one benchmark invocation runs: the CLI flags, the service URLs (the
 * same AMQP_URL and REDIS_URL variables Conveyor reads, with its defaults),
 * and the sizes of every scenario in quick and full mode. The quick sizes
 * are chosen so that `pnpm bench --quick` ends within five minutes on a
 * 2-core machine; the full sizes are the ones the issue names.
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

export const SCENARIOS = ['throughput', 'http-submit', 'latency', 'scaling', 'memory'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface Settings {
  quick: boolean;
  runs: number;
  scenarios: readonly ScenarioName[];
  /** The command line as typed, for the report. */
  command: string;
  amqpUrl: string;
  redisUrl: string;
  /** Celery's result backend: a database of its own, so its keys never mix with Conveyor's or BullMQ's. */
  celeryResultUrl: string;
  repoRoot: string;
  benchRoot: string;
  cores: number;
  throughput: { tasks: number; celeryTasks: number; concurrency: number };
  http: { connections: readonly number[]; durationSeconds: number; warmupSeconds: number; publishMessages: number };
  latency: { iterations: number; warmup: number };
  scaling: { tasks: number; processes: readonly number[]; concurrencies: readonly number[]; concurrency: number };
  memory: { soakTasks: number; bytesTasks: number; backlog: number };
}

export const benchRoot = fileURLToPath(new URL('../', import.meta.url));
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

export class UsageError extends Error {}

export const USAGE = `usage: pnpm bench [--quick] [--only ${SCENARIOS.join(',')}] [--runs N]

  --quick        smaller sizes; finishes in under five minutes on 2 cores
  --only LIST    comma-separated scenarios to run (default: all)
  --runs N       runs per scenario and peer (default 3)`;

export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Settings {
  let quick = false;
  let runs = 3;
  let scenarios: ScenarioName[] = [...SCENARIOS];
  const args = argv.filter((a) => a !== '--');
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? arg.split('=', 2) : [arg, undefined];
    const value = () => {
      const v = inline ?? args[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--quick':
        quick = true;
        break;
      case '--runs': {
        runs = Number(value());
        if (!Number.isInteger(runs) || runs < 1 || runs > 20) throw new UsageError('--runs must be an integer 1..20');
        break;
      }
      case '--only': {
        const names = value()
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        const unknown = names.filter((n) => !(SCENARIOS as readonly string[]).includes(n));
        if (unknown.length > 0 || names.length === 0) {
          throw new UsageError(
            `unknown scenario(s): ${unknown.join(', ') || '(none)'}; known: ${SCENARIOS.join(', ')}`,
          );
        }
        scenarios = SCENARIOS.filter((s) => names.includes(s));
        break;
      }
      case '--help':
      case '-h':
        throw new UsageError('');
      default:
        throw new UsageError(`unknown argument ${arg}`);
    }
  }

  const redisUrl = env.REDIS_URL ?? 'redis://localhost:6379/0';
  const celeryDb = env.BENCH_CELERY_REDIS_DB ?? '2';
  const cores = availableParallelism();
  return {
    quick,
    runs,
    scenarios,
    command: ['pnpm bench', ...args].join(' '),
    amqpUrl: env.AMQP_URL ?? 'amqp://guest:guest@localhost:5672',
    redisUrl,
    celeryResultUrl: withDb(redisUrl, celeryDb),
    repoRoot,
    benchRoot,
    cores,
    throughput: quick
      ? { tasks: 6_000, celeryTasks: 2_500, concurrency: 50 }
      : { tasks: 50_000, celeryTasks: 20_000, concurrency: 50 },
    http: quick
      ? { connections: [16], durationSeconds: 2, warmupSeconds: 1, publishMessages: 10_000 }
      : { connections: [1, 16, 64], durationSeconds: 10, warmupSeconds: 2, publishMessages: 50_000 },
    latency: quick ? { iterations: 500, warmup: 30 } : { iterations: 5000, warmup: 200 },
    scaling: quick
      ? { tasks: 2_000, processes: [1, 4], concurrencies: [1, 16], concurrency: 50 }
      : { tasks: 30_000, processes: [1, 2, 4], concurrencies: [1, 4, 16, 64], concurrency: 50 },
    memory: quick
      ? { soakTasks: 100_000, bytesTasks: 5_000, backlog: 20_000 }
      : { soakTasks: 1_000_000, bytesTasks: 30_000, backlog: 20_000 },
  };
}

function withDb(url: string, db: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${db}`;
  return parsed.toString();
}
