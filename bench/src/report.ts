/**
 * Turns the measurements of one invocation into the report: the targets of
 * the benchmark issue (each a ratio or a bound, PASS or MISS), markdown
 * tables small enough to paste into a README, and the JSON record.
 */
import { format, type Results, type SummarizedMeasurement } from './results.js';
import { HTTP_SUBJECTS, P99, RPS } from './scenarios/http-submit.js';
import { LATENCY_METRICS, LATENCY_SUBJECTS } from './scenarios/latency.js';
import { MEMORY_METRICS, MEMORY_SUBJECTS } from './scenarios/memory.js';
import { RATE, SUBJECTS } from './scenarios/throughput.js';
import { SCENARIOS, type ScenarioName, type Settings } from './settings.js';

/** Stable ids of the targets, as the JSON record stores them (history.ts reads them back). */
export const TARGET_IDS = {
  throughputVsBullmq: 'throughput-vs-bullmq',
  throughputVsCelery: 'throughput-vs-celery',
  throughputVsRaw: 'throughput-vs-raw',
  httpVsRawPublish: 'http-vs-raw-publish',
  httpP99AtHalfRate: 'http-p99-at-half-rate',
  latencyP50: 'latency-p50',
  latencyP99: 'latency-p99',
  latencyBelowBullmq: 'latency-below-bullmq',
  latencyBelowCelery: 'latency-below-celery',
  workerRssFlat: 'worker-rss-flat',
  redisBytesVsBullmq: 'redis-bytes-vs-bullmq',
} as const;

export interface Target {
  id: string;
  description: string;
  /** What was measured, as shown in the table (e.g. "2.10× (1.95–2.31)"). */
  measured: string;
  /** The measured ratio or value the bound applies to; null when it could not be measured. */
  value: number | null;
  pass: boolean | null;
  note?: string;
}

type Find = (scenario: ScenarioName, subject: string, metric: string) => SummarizedMeasurement | undefined;

/** Per-run ratios a[i] / b[i] (runs of the same invocation, in the same order). */
function pairedRatios(a: SummarizedMeasurement, b: SummarizedMeasurement): number[] {
  const n = Math.min(a.runs.length, b.runs.length);
  return Array.from({ length: n }, (_, i) => a.runs[i]! / b.runs[i]!);
}

function ratioText(ratio: number, paired: number[]): string {
  const text = `${ratio.toFixed(2)}×`;
  if (paired.length < 2) return text;
  return `${text} (runs ${Math.min(...paired).toFixed(2)}–${Math.max(...paired).toFixed(2)})`;
}

function ratioTarget(
  id: string,
  description: string,
  a: SummarizedMeasurement | undefined,
  b: SummarizedMeasurement | undefined,
  check: (ratio: number) => boolean,
  missing: string,
): Target {
  if (!a || !b) return { id, description, measured: 'n/a', value: null, pass: null, note: missing };
  const ratio = a.median / b.median;
  return {
    id,
    description,
    measured: `${ratioText(ratio, pairedRatios(a, b))}: ${format(a.median, a.digits)} vs ${format(b.median, b.digits)} ${a.metric}`,
    value: ratio,
    pass: check(ratio),
  };
}

/** "p99 ms" and 4.2 -> "p99 4.2 ms"; other metrics -> "4.2 metric". */
function labelled(metric: string, value: string): string {
  return metric.endsWith(' ms') ? `${metric.slice(0, -3)} ${value} ms` : `${value} ${metric}`;
}

function boundTarget(
  id: string,
  description: string,
  m: SummarizedMeasurement | undefined,
  check: (v: number) => boolean,
  missing: string,
): Target {
  if (!m) return { id, description, measured: 'n/a', value: null, pass: null, note: missing };
  return {
    id,
    description,
    measured: `${labelled(m.metric, format(m.median, m.digits))} (${format(m.min, m.digits)}–${format(m.max, m.digits)})`,
    value: m.median,
    pass: check(m.median),
  };
}

export function evaluateTargets(results: Results, settings: Settings): Target[] {
  const find: Find = (s, subject, metric) => results.find(s, subject, metric);
  const targets: Target[] = [];
  const celerySkipped = results.skipped.get('Celery') ?? 'not run';

  if (settings.scenarios.includes('throughput')) {
    const conveyor = find('throughput', SUBJECTS.conveyor, RATE.metric);
    const bullmq = find('throughput', SUBJECTS.bullmq, RATE.metric);
    const vsBullmq = ratioTarget(
      TARGET_IDS.throughputVsBullmq,
      'End-to-end no-op throughput ≥ 1.5× BullMQ (same concurrency)',
      conveyor,
      bullmq,
      (r) => r >= 1.5,
      'not measured',
    );
    // How far the target is from what the broker alone delivers in the same run.
    const broker = find('throughput', SUBJECTS.broker, RATE.metric);
    if (vsBullmq.value !== null && bullmq && broker) {
      const needed = 1.5 * bullmq.median;
      vsBullmq.note = `1.5× BullMQ is ${format(needed)} tasks/s, ${format((100 * needed) / broker.median)} % of the broker-only ceiling (${format(broker.median)} msgs/s)`;
    }
    targets.push(
      vsBullmq,
      ratioTarget(
        TARGET_IDS.throughputVsCelery,
        `End-to-end no-op throughput ≥ 5× Celery prefork (${settings.cores} pool processes)`,
        conveyor,
        find('throughput', SUBJECTS.celery, RATE.metric),
        (r) => r >= 5,
        celerySkipped,
      ),
      ratioTarget(
        TARGET_IDS.throughputVsRaw,
        'End-to-end no-op throughput ≥ 50 % of the raw amqplib+Redis loop',
        conveyor,
        find('throughput', SUBJECTS.raw, RATE.metric),
        (r) => r >= 0.5,
        'not measured',
      ),
    );
  }

  if (settings.scenarios.includes('http-submit')) {
    // The best Conveyor point over the connection counts tried.
    const points = settings.http.connections
      .map((c) => find('http-submit', HTTP_SUBJECTS.conveyor(c), RPS.metric))
      .filter((m): m is SummarizedMeasurement => m !== undefined)
      .sort((a, b) => b.median - a.median);
    const best = points[0];
    const raw = find('http-submit', HTTP_SUBJECTS.raw, RPS.metric);
    const t = ratioTarget(
      TARGET_IDS.httpVsRawPublish,
      'HTTP submit req/s ≥ 60 % of the raw confirmed-publish rate (same run)',
      best,
      raw,
      (r) => r >= 0.6,
      'not measured',
    );
    if (best) t.note = `best point: ${best.subject}`;
    targets.push(
      t,
      boundTarget(
        TARGET_IDS.httpP99AtHalfRate,
        'HTTP submit p99 < 10 ms at half the raw confirmed-publish rate',
        find('http-submit', HTTP_SUBJECTS.half, P99.metric),
        (v) => v < 10,
        'not measured',
      ),
    );
  }

  if (settings.scenarios.includes('latency')) {
    const p50 = find('latency', LATENCY_SUBJECTS.producer, LATENCY_METRICS.p50.metric);
    const p99 = find('latency', LATENCY_SUBJECTS.producer, LATENCY_METRICS.p99.metric);
    targets.push(
      boundTarget(
        TARGET_IDS.latencyP50,
        'Submit → result (producer API) p50 ≤ 1.2 ms',
        p50,
        (v) => v <= 1.2,
        'not measured',
      ),
      boundTarget(
        TARGET_IDS.latencyP99,
        'Submit → result (producer API) p99 ≤ 6 ms',
        p99,
        (v) => v <= 6,
        'not measured',
      ),
    );
    for (const [peer, subject, id] of [
      ['BullMQ', LATENCY_SUBJECTS.bullmq, TARGET_IDS.latencyBelowBullmq],
      ['Celery', LATENCY_SUBJECTS.celery, TARGET_IDS.latencyBelowCelery],
    ] as const) {
      const peerP50 = find('latency', subject, LATENCY_METRICS.p50.metric);
      const peerP99 = find('latency', subject, LATENCY_METRICS.p99.metric);
      const description = `Submit → result p50 and p99 below ${peer}'s`;
      if (!p50 || !p99 || !peerP50 || !peerP99) {
        targets.push({
          id,
          description,
          measured: 'n/a',
          value: null,
          pass: null,
          note: peer === 'Celery' ? celerySkipped : 'not measured',
        });
        continue;
      }
      const worst = Math.max(p50.median / peerP50.median, p99.median / peerP99.median);
      targets.push({
        id,
        description,
        measured: `p50 ${format(p50.median, 2)} vs ${format(peerP50.median, 2)} ms, p99 ${format(p99.median, 2)} vs ${format(peerP99.median, 2)} ms`,
        value: worst,
        pass: worst < 1,
      });
    }
  }

  if (settings.scenarios.includes('memory')) {
    const spread = find('memory', MEMORY_SUBJECTS.rss, MEMORY_METRICS.spread.metric);
    const t = boundTarget(
      TARGET_IDS.workerRssFlat,
      `Worker RSS flat within 10 % over the last 90 % of ${format(settings.memory.soakTasks)} tasks`,
      spread,
      (v) => v <= 10,
      'not measured',
    );
    if (spread) t.measured = `spread ${format(spread.median, 1)} %`;
    targets.push(
      t,
      ratioTarget(
        TARGET_IDS.redisBytesVsBullmq,
        "Redis bytes per finished task ≤ 1.2× BullMQ's per finished job (used_memory Δ)",
        find('memory', MEMORY_SUBJECTS.conveyorBytes, MEMORY_METRICS.usedMemory.metric),
        find('memory', MEMORY_SUBJECTS.bullmqBytes, MEMORY_METRICS.usedMemory.metric),
        (r) => r <= 1.2,
        'not measured',
      ),
    );
  }
  return targets;
}

// ------------------------------------------------------------------ markdown

function cell(m: SummarizedMeasurement): string {
  const median = format(m.median, m.digits);
  if (m.runs.length < 2) return median;
  return `${median} (${format(m.min, m.digits)}–${format(m.max, m.digits)})`;
}

/**
 * Subjects as rows, metrics as columns, in order of first appearance.
 * Subjects whose metrics nest (one's set contains the other's) share a
 * table; disjoint ones (worker RSS vs Redis bytes) get tables of their own.
 */
function scenarioTables(rows: SummarizedMeasurement[]): string[] {
  const groups: { subjects: string[]; metrics: Set<string> }[] = [];
  for (const subject of new Set(rows.map((r) => r.subject))) {
    const metrics = new Set(rows.filter((r) => r.subject === subject).map((r) => r.metric));
    const within = (a: Set<string>, b: Set<string>) => [...a].every((m) => b.has(m));
    const group = groups.find((g) => within(metrics, g.metrics) || within(g.metrics, metrics));
    if (group) {
      group.subjects.push(subject);
      for (const m of metrics) group.metrics.add(m);
    } else {
      groups.push({ subjects: [subject], metrics });
    }
  }
  return groups.map((g) => table(rows, g.subjects, [...g.metrics]));
}

function table(rows: SummarizedMeasurement[], subjects: string[], metricSet: string[]): string {
  // Metric columns in the order they were first measured.
  const order = [...new Set(rows.map((r) => r.metric))];
  const metrics = order.filter((m) => metricSet.includes(m));
  const lines = [`| | ${metrics.join(' | ')} |`, `|---|${metrics.map(() => '---:').join('|')}|`];
  for (const subject of subjects) {
    const cells = metrics.map((metric) => {
      const m = rows.find((r) => r.subject === subject && r.metric === metric);
      return m ? cell(m) : '';
    });
    lines.push(`| ${subject} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

export function scenarioTitle(s: ScenarioName, settings: Settings): string {
  switch (s) {
    case 'throughput':
      return `Throughput: ${format(settings.throughput.tasks)} no-op tasks (Celery ${format(settings.throughput.celeryTasks)}) queued, then one worker process at concurrency ${settings.throughput.concurrency} (Celery: prefork, ${settings.cores} processes)`;
    case 'http-submit':
      return `HTTP submit: POST /api/tasks under autocannon, ${settings.http.durationSeconds} s per point, worker draining`;
    case 'latency':
      return `Latency: ${format(settings.latency.iterations)} sequential submit → result round trips of a no-op`;
    case 'scaling':
      return `Scaling: Conveyor throughput, ${format(settings.scaling.tasks)} tasks per point`;
    case 'memory':
      return `Memory: worker RSS over ${format(settings.memory.soakTasks)} tasks (one run); Redis bytes over ${format(settings.memory.bytesTasks)} tasks`;
  }
}

export interface ReportHeader {
  date: string;
  machine: { cpuModel: string; cores: number; memoryGiB: number; os: string; kernel: string };
  versions: Record<string, string>;
  durationSeconds: number;
}

export function markdown(results: Results, targets: Target[], settings: Settings, header: ReportHeader): string {
  const m = header.machine;
  const v = header.versions;
  const out: string[] = [
    `### Benchmarks (${settings.quick ? 'quick mode' : 'full mode'}, ${header.date})`,
    '',
    `Machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os} (Linux ${m.kernel}). ` +
      `Versions: Conveyor ${v.conveyor}, Node ${v.node}, ${v.rabbitmq}, Redis ${v.redis}, BullMQ ${v.bullmq}, ` +
      `Celery ${v.celery} (Python ${v.python}), autocannon ${v.autocannon}. ` +
      `Command: \`${settings.command}\` — ${settings.runs} run(s) per point, median (min–max); took ${Math.round(header.durationSeconds)} s.`,
  ];
  if (targets.length > 0) {
    out.push(
      '',
      '#### Targets',
      '',
      '| Target | Measured | Result |',
      '|---|---|:---:|',
      ...targets.map(
        (t) =>
          `| ${t.description} | ${t.measured}${t.note ? ` — ${t.note}` : ''} | ${t.pass === null ? 'n/a' : t.pass ? 'PASS' : 'MISS'} |`,
      ),
    );
  }
  const all = results.all();
  for (const s of SCENARIOS) {
    const rows = all.filter((r) => r.scenario === s);
    if (rows.length === 0) continue;
    out.push('', `#### ${scenarioTitle(s, settings)}`);
    for (const t of scenarioTables(rows)) out.push('', t);
  }
  if (results.skipped.size > 0) {
    out.push('', ...[...results.skipped].map(([what, why]) => `Skipped ${what}: ${why}`));
  }
  return `${out.join('\n')}\n`;
}
