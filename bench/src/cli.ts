/**
 * `pnpm bench [--quick] [--only a,b] [--runs N]`: runs the selected
 * scenarios for Conveyor and its peers back to back, prints every value as
 * it is measured and the tables at the end, and writes
 * bench/results/<date>[-quick][-<scenarios>].json and .md (and the scaling
 * chart as SVG). Exits 1 if a scenario failed to run; a missed target is a
 * result, not a failure.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { gitCommit, machine, packageVersion, pythonVersion } from './machine.js';
import { celeryVersionIfInstalled, ensureCelery, PYTHON } from './peers/celery.js';
import { evaluateTargets, markdown, type ReportHeader } from './report.js';
import { Results } from './results.js';
import { waitForServices, type Context } from './scenarios/context.js';
import { runHttpSubmit } from './scenarios/http-submit.js';
import { runLatency } from './scenarios/latency.js';
import { runMemory } from './scenarios/memory.js';
import { runScaling, scalingSubject } from './scenarios/scaling.js';
import { RATE, runThroughput } from './scenarios/throughput.js';
import { parseArgs, USAGE, UsageError, type ScenarioName, type Settings } from './settings.js';
import { scalingSvg, type Point } from './svg.js';
import { AmqpHandle } from './util/amqp.js';
import { connectRedis, infoField } from './util/redis.js';

const startedAt = Date.now();
/** Every progress line carries the seconds since start, so slow steps show. */
const log = (line: string) => {
  const elapsed = ((Date.now() - startedAt) / 1000).toFixed(1).padStart(6);
  process.stdout.write(line.startsWith('\n') || line.includes('\n|') ? `${line}\n` : `[${elapsed}s] ${line}\n`);
};

const RUNNERS: Record<ScenarioName, (ctx: Context) => Promise<void>> = {
  throughput: runThroughput,
  'http-submit': runHttpSubmit,
  latency: runLatency,
  scaling: runScaling,
  memory: runMemory,
};

function outputBase(settings: Settings, date: string): string {
  let base = date;
  if (settings.quick) base += '-quick';
  if (settings.scenarios.length < 5) base += `-${settings.scenarios.join('+')}`;
  return base;
}

function scalingChart(results: Results, settings: Settings): string | null {
  const point = (subject: string, x: number): Point[] => {
    const m = results.find('scaling', subject, RATE.metric);
    return m ? [{ x, median: m.median, min: m.min, max: m.max }] : [];
  };
  const { processes, concurrencies, concurrency } = settings.scaling;
  const byProcesses = processes.flatMap((p) => point(scalingSubject.processes(p, concurrency), p));
  const byConcurrency = [...new Set([...concurrencies, concurrency])]
    .sort((a, b) => a - b)
    .flatMap((c) =>
      c === concurrency ? point(scalingSubject.processes(1, concurrency), c) : point(scalingSubject.concurrency(c), c),
    );
  if (byProcesses.length + byConcurrency.length === 0) return null;
  return scalingSvg(
    [
      { title: `Worker processes (concurrency ${concurrency} each)`, xLabel: 'worker processes', points: byProcesses },
      { title: 'Concurrency of one worker process', xLabel: 'WORKER_CONCURRENCY', log2: true, points: byConcurrency },
    ],
    `Conveyor no-op throughput, ${settings.scaling.tasks} tasks per point, ${settings.runs} run(s) each, ${settings.cores} cores`,
  );
}

async function main(): Promise<number> {
  let settings: Settings;
  try {
    settings = parseArgs(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    if (error.message) process.stderr.write(`${error.message}\n`);
    process.stderr.write(`${USAGE}\n`);
    return error.message ? 2 : 0;
  }
  const started = startedAt;
  for (const role of ['api', 'worker']) {
    if (!existsSync(join(settings.repoRoot, 'services', role, 'dist', 'server.js'))) {
      process.stderr.write(`services/${role}/dist/server.js is missing: run \`pnpm -s build\` first\n`);
      return 2;
    }
  }

  const results = new Results(log);
  const amqp = new AmqpHandle(settings.amqpUrl);
  const redis = connectRedis(settings.redisUrl, 'conveyor-bench');
  let celeryRedis: Redis | null = null;
  let celeryVersion = 'not installed';
  const needsCelery = settings.scenarios.some((s) => s === 'throughput' || s === 'latency');
  if (needsCelery) {
    const celery = ensureCelery(log);
    if ('version' in celery) {
      celeryVersion = celery.version;
      celeryRedis = connectRedis(settings.celeryResultUrl, 'conveyor-bench-celery');
    } else {
      results.skip('Celery', celery.skip);
    }
  } else {
    celeryVersion = celeryVersionIfInstalled() ?? 'not installed';
  }

  // prepare.sh has checked both services, but on a shared machine one may be restarting right now.
  await waitForServices({ redis, celeryRedis, amqp });
  const header: ReportHeader = {
    date: new Date().toISOString().slice(0, 10),
    machine: machine(),
    versions: {
      conveyor: gitCommit(settings.repoRoot),
      node: process.versions.node,
      rabbitmq: amqp.version,
      redis: (await infoField(redis, 'server', 'redis_version')) ?? 'unknown',
      bullmq: packageVersion('bullmq'),
      celery: celeryVersion,
      python: pythonVersion(PYTHON),
      autocannon: packageVersion('autocannon'),
      fastify: packageVersion('fastify'),
    },
    durationSeconds: 0,
  };
  const m = header.machine;
  log(`conveyor bench (${settings.quick ? 'quick' : 'full'}): ${settings.scenarios.join(', ')}; ${settings.runs} runs`);
  log(`machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB; ${m.os}`);
  log(
    `versions: ${Object.entries(header.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );

  const ctx: Context = { settings, results, amqp, redis, celeryRedis, log };
  const failed: string[] = [];
  for (const scenario of settings.scenarios) {
    const t0 = Date.now();
    log(`\n== ${scenario}`);
    try {
      await RUNNERS[scenario](ctx);
    } catch (error) {
      failed.push(scenario);
      results.note(`${scenario} failed: ${(error as Error).stack ?? String(error)}`);
    }
    log(`== ${scenario} took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }

  header.durationSeconds = (Date.now() - started) / 1000;
  const targets = evaluateTargets(results, settings);
  const md = markdown(results, targets, settings, header);
  const dir = join(settings.benchRoot, 'results');
  mkdirSync(dir, { recursive: true });
  const base = outputBase(settings, header.date);
  const json = {
    ...header,
    command: settings.command,
    mode: settings.quick ? 'quick' : 'full',
    runs: settings.runs,
    scenarios: settings.scenarios,
    sizes: {
      throughput: settings.throughput,
      http: settings.http,
      latency: settings.latency,
      scaling: settings.scaling,
      memory: settings.memory,
    },
    targets,
    measurements: results.all(),
    notes: results.notes,
    skipped: Object.fromEntries(results.skipped),
    failed,
    extras: results.extras,
  };
  writeFileSync(join(dir, `${base}.json`), `${JSON.stringify(json, null, 2)}\n`);
  writeFileSync(join(dir, `${base}.md`), md);
  const written = [`${base}.json`, `${base}.md`];
  const svg = settings.scenarios.includes('scaling') ? scalingChart(results, settings) : null;
  if (svg) {
    const name = settings.quick ? 'scaling-quick.svg' : 'scaling.svg';
    writeFileSync(join(dir, name), svg);
    written.push(name);
  }

  log(`\n${md}`);
  log(`written: ${written.map((f) => `bench/results/${f}`).join(', ')}`);
  log(`took ${header.durationSeconds.toFixed(0)} s${failed.length ? `; FAILED: ${failed.join(', ')}` : ''}`);

  await redis.quit().catch(() => undefined);
  await celeryRedis?.quit().catch(() => undefined);
  await amqp.close();
  return failed.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
