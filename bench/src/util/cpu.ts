/**
 * Where a system spends its CPU per task: the CPU time of its worker
 * processes (with their children: Celery's prefork pool) and of the local
 * RabbitMQ and Redis servers, read from /proc while tasks finish. Two
 * samples, at 10 % and at 90 % of the tasks finished, leave start-up and
 * the tail out. On a machine whose cores all these processes share, the
 * sum per task is what bounds the throughput.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

export const CPU_ROLES = ['worker', 'RabbitMQ', 'Redis'] as const;
export type CpuRole = (typeof CPU_ROLES)[number];
export type ServerRole = Exclude<CpuRole, 'worker'>;

/** The server processes, by their command name. */
const SERVER_COMMANDS: Record<ServerRole, string> = { RabbitMQ: 'beam.smp', Redis: 'redis-server' };

interface ProcStat {
  pid: number;
  ppid: number;
  command: string;
  ticks: number;
}

function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null; // gone, or not Linux
  }
  // The command may hold spaces and parentheses: the fields after it follow the last ')'.
  const close = text.lastIndexOf(')');
  const fields = text.slice(close + 2).split(' ');
  return {
    pid,
    ppid: Number(fields[1]),
    command: text.slice(text.indexOf('(') + 1, close),
    ticks: Number(fields[11]) + Number(fields[12]),
  };
}

function allProcesses(): ProcStat[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  return entries.flatMap((name) => (/^\d+$/.test(name) ? (readStat(Number(name)) ?? []) : []));
}

export type CpuPerTask = Partial<Record<CpuRole, number>>;

export class CpuMeter {
  readonly #workerPids: readonly number[];
  readonly #servers: readonly ServerRole[];
  readonly #target: number;
  #first: { finished: number; seconds: CpuPerTask } | null = null;
  #result: CpuPerTask | null = null;

  /**
   * `workerPids`: the worker processes of the run; `target`: the tasks it
   * will finish; `servers`: the servers the system under test uses.
   */
  constructor(workerPids: readonly number[], target: number, servers: readonly ServerRole[]) {
    this.#workerPids = workerPids;
    this.#target = target;
    this.#servers = servers;
  }

  /** Call with every count of finished tasks the run polls; samples at the 10 % and 90 % marks. */
  observe(finished: number): void {
    if (this.#first === null && finished >= this.#target * 0.1) {
      this.#first = { finished, seconds: this.#sample() };
    } else if (this.#first !== null && this.#result === null && finished >= this.#target * 0.9) {
      const seconds = this.#sample();
      const tasks = finished - this.#first.finished;
      const result: CpuPerTask = {};
      for (const role of CPU_ROLES) {
        const before = this.#first.seconds[role];
        const after = seconds[role];
        if (before !== undefined && after !== undefined && tasks > 0) result[role] = ((after - before) / tasks) * 1e6;
      }
      this.#result = result;
    }
  }

  /** CPU µs per finished task by role, or null if the run ended before both marks. */
  get perTask(): CpuPerTask | null {
    return this.#result;
  }

  /** CPU seconds so far of the workers (with descendants) and of each of the servers found locally. */
  #sample(): CpuPerTask {
    const processes = allProcesses();
    const children = new Map<number, ProcStat[]>();
    for (const p of processes) {
      const siblings = children.get(p.ppid);
      if (siblings) siblings.push(p);
      else children.set(p.ppid, [p]);
    }
    let workerTicks = 0;
    const pending = this.#workerPids.map((pid) => readStat(pid)).filter((p) => p !== null);
    while (pending.length > 0) {
      const p = pending.pop()!;
      workerTicks += p.ticks;
      pending.push(...(children.get(p.pid) ?? []));
    }
    const seconds: CpuPerTask = { worker: workerTicks / TICKS_PER_SECOND };
    for (const role of this.#servers) {
      const servers = processes.filter((p) => p.command === SERVER_COMMANDS[role]);
      if (servers.length > 0) seconds[role] = servers.reduce((sum, p) => sum + p.ticks, 0) / TICKS_PER_SECOND;
    }
    return seconds;
  }
}
