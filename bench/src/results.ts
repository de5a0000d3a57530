/**
 * What a benchmark invocation measured: every run's value of every metric,
 * keyed by scenario, subject (Conveyor or a peer, with its parameters) and
 * metric. Summaries (median, min, max) are computed from the runs; ratios
 * are only ever taken between measurements of the same invocation.
 */
import type { ScenarioName } from './settings.js';
import { summarize, type Summary } from './util/stats.js';

export interface MetricSpec {
  /** Column label, e.g. "tasks/s" or "p99 ms". */
  metric: string;
  better: 'higher' | 'lower';
  /** Digits after the point in tables. */
  digits?: number;
}

export interface Measurement extends MetricSpec {
  scenario: ScenarioName;
  /** Row label: "Conveyor", "BullMQ", "Celery prefork", "raw amqplib+Redis", with parameters. */
  subject: string;
  runs: number[];
}

export interface SummarizedMeasurement extends Measurement, Summary {}

export class Results {
  readonly #rows = new Map<string, Measurement>();
  readonly notes: string[] = [];
  readonly skipped = new Map<string, string>();
  /** Extra data for the JSON report (e.g. the RSS samples of the soak). */
  readonly extras: Record<string, unknown> = {};
  readonly #log: (line: string) => void;
  /** Values of the run in progress, held until it succeeds (a failed run may be retried). */
  #staged: { scenario: ScenarioName; subject: string; spec: MetricSpec; value: number }[] | null = null;

  constructor(log: (line: string) => void) {
    this.#log = log;
  }

  /** Records one run's value (and prints it at once); inside a run, only once the run commits. */
  add(scenario: ScenarioName, subject: string, spec: MetricSpec, value: number): void {
    const key = `${scenario}\u0000${subject}\u0000${spec.metric}`;
    const run = (this.#rows.get(key)?.runs.length ?? 0) + 1;
    this.#log(`  ${scenario} | ${subject} | ${spec.metric}: ${format(value, spec.digits)} (run ${run})`);
    if (this.#staged) this.#staged.push({ scenario, subject, spec, value });
    else this.#record(scenario, subject, spec, value);
  }

  /** From now on, values are held until commitRun() or dropped by discardRun(). */
  beginRun(): void {
    this.#staged = [];
  }

  commitRun(): void {
    const staged = this.#staged ?? [];
    this.#staged = null;
    for (const s of staged) this.#record(s.scenario, s.subject, s.spec, s.value);
  }

  discardRun(): void {
    this.#staged = null;
  }

  #record(scenario: ScenarioName, subject: string, spec: MetricSpec, value: number): void {
    const key = `${scenario}\u0000${subject}\u0000${spec.metric}`;
    let row = this.#rows.get(key);
    if (!row) this.#rows.set(key, (row = { scenario, subject, ...spec, runs: [] }));
    row.runs.push(value);
  }

  note(line: string): void {
    this.notes.push(line);
    this.#log(`  note: ${line}`);
  }

  skip(what: string, reason: string): void {
    this.skipped.set(what, reason);
    this.#log(`  skipped ${what}: ${reason}`);
  }

  all(): SummarizedMeasurement[] {
    return [...this.#rows.values()].map((m) => ({ ...m, ...summarize(m.runs) }));
  }

  find(scenario: ScenarioName, subject: string, metric: string): SummarizedMeasurement | undefined {
    const row = this.#rows.get(`${scenario}\u0000${subject}\u0000${metric}`);
    return row ? { ...row, ...summarize(row.runs) } : undefined;
  }
}

export function format(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
