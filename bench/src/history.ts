/**
 * `pnpm bench:history`: prints one table row per full `pnpm bench` run kept
 * in bench/results, oldest first. Each row gives the value every target was
 * judged on (bold when missed) and the rates that show how fast the machine
 * was at the time. Ratios move with the shared machine's hour, so the README
 * reads one run beside the others through this table, built from the JSON
 * records rather than copied by hand.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { TARGET_IDS, type Target } from './report.js';
import { format, type SummarizedMeasurement } from './results.js';
import { RATE, SUBJECTS } from './scenarios/throughput.js';
import { SCENARIOS } from './settings.js';

const RESULTS_DIR = new URL('../results/', import.meta.url);
/** Where the README (at the repository root) finds a run's markdown report. */
const REPORT_LINK_DIR = 'bench/results/';

/** The fields of a results JSON record (as cli.ts writes it) this table reads. */
interface RunRecord {
  date: string;
  mode: 'quick' | 'full';
  scenarios: string[];
  versions: { conveyor: string };
  targets: Target[];
  measurements: SummarizedMeasurement[];
}

const TARGET_COLUMNS: { id: string; header: string; digits: number }[] = [
  { id: TARGET_IDS.throughputVsBullmq, header: '÷ BullMQ (≥ 1.5)', digits: 2 },
  { id: TARGET_IDS.throughputVsCelery, header: '÷ Celery (≥ 5)', digits: 2 },
  { id: TARGET_IDS.throughputVsRaw, header: '÷ raw loop (≥ 0.5)', digits: 2 },
  { id: TARGET_IDS.httpVsRawPublish, header: 'HTTP ÷ raw publish (≥ 0.6)', digits: 2 },
  { id: TARGET_IDS.httpP99AtHalfRate, header: 'HTTP p99 ms at ½ (< 10)', digits: 1 },
  { id: TARGET_IDS.latencyP50, header: 'round trip p50 ms (≤ 1.2)', digits: 2 },
  { id: TARGET_IDS.latencyP99, header: 'round trip p99 ms (≤ 6)', digits: 2 },
  { id: TARGET_IDS.workerRssFlat, header: 'RSS spread % (≤ 10)', digits: 1 },
  { id: TARGET_IDS.redisBytesVsBullmq, header: 'Redis bytes ÷ BullMQ (≤ 1.2)', digits: 2 },
];

const RATE_COLUMNS: { subject: string; header: string }[] = [
  { subject: SUBJECTS.conveyor, header: 'Conveyor tasks/s' },
  { subject: SUBJECTS.bullmq, header: 'BullMQ jobs/s' },
  { subject: SUBJECTS.broker, header: 'broker only msgs/s' },
];

interface Run {
  file: string;
  record: RunRecord;
  /** Commit time of the run's code (seconds), for the order of runs on one day. */
  committedAt: number;
}

/** A record's commit as git knows it; a run with uncommitted changes names its base commit. */
function commitOf(record: RunRecord): { sha: string; dirty: boolean } {
  const [sha = '', ...rest] = record.versions.conveyor.split(' ');
  return { sha, dirty: rest.length > 0 };
}

function commitTime(sha: string): number {
  try {
    return Number(execFileSync('git', ['log', '-1', '--format=%ct', sha], { encoding: 'utf8', stdio: 'pipe' }));
  } catch {
    // Not in this clone's history: order it last on its day.
    return Number.POSITIVE_INFINITY;
  }
}

/** Every full run of all scenarios, oldest first. */
function fullRuns(): Run[] {
  const runs: Run[] = [];
  // Sorted by name first, so runs that git cannot date keep one order.
  for (const file of readdirSync(RESULTS_DIR).sort()) {
    if (!file.endsWith('.json')) continue;
    const record = JSON.parse(readFileSync(new URL(file, RESULTS_DIR), 'utf8')) as RunRecord;
    if (record.mode !== 'full' || !SCENARIOS.every((s) => record.scenarios.includes(s))) continue;
    runs.push({ file, record, committedAt: commitTime(commitOf(record).sha) });
  }
  return runs.sort((a, b) => a.record.date.localeCompare(b.record.date) || a.committedAt - b.committedAt);
}

function targetCell(record: RunRecord, id: string, digits: number): string {
  const target = record.targets.find((t) => t.id === id);
  if (!target || target.value === null) return 'n/a';
  const value = format(target.value, digits);
  return target.pass === false ? `**${value}**` : value;
}

function rateCell(record: RunRecord, subject: string): string {
  const m = record.measurements.find(
    (x) => x.scenario === 'throughput' && x.subject === subject && x.metric === RATE.metric,
  );
  return m ? format(m.median) : '';
}

function historyTable(runs: readonly Run[]): string {
  const headers = ['run', ...TARGET_COLUMNS.map((c) => c.header), ...RATE_COLUMNS.map((c) => c.header)];
  const lines = [
    `| ${headers.join(' | ')} |`,
    `|---|${headers
      .slice(1)
      .map(() => '---:')
      .join('|')}|`,
  ];
  for (const { file, record } of runs) {
    const { sha, dirty } = commitOf(record);
    const report = `${REPORT_LINK_DIR}${file.replace(/\.json$/, '.md')}`;
    const run = `${record.date} [${sha}${dirty ? '*' : ''}](${report})`;
    const cells = [
      ...TARGET_COLUMNS.map((c) => targetCell(record, c.id, c.digits)),
      ...RATE_COLUMNS.map((c) => rateCell(record, c.subject)),
    ];
    lines.push(`| ${run} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

const LEGEND =
  'Medians of three runs each (the RSS spread: of one soak); bold: the target was missed; * the run had uncommitted changes on top of that commit.';
process.stdout.write(`${historyTable(fullRuns())}\n\n${LEGEND}\n`);
