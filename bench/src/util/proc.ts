/**
 * Child processes of the benchmark: Conveyor roles, the BullMQ worker, the
 * Celery worker, the bare Fastify ceiling. Each is spawned with an explicit
 * environment, tracked by pid, and stopped by that pid only (SIGTERM, then
 * SIGKILL after a grace). Whatever is still running when the benchmark exits
 * (an error, Ctrl-C) is killed by the exit hook below, and nothing else.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { sleep } from './time.js';

export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly stdout: string[];
  readonly stderr: string[];
  readonly exited: boolean;
  /** The exit code once exited (null when killed by a signal). */
  readonly exitCode: number | null | undefined;
  /** Resolves once the process has exited; rejects after `timeoutMs` (the process keeps running). */
  waitForExit(timeoutMs: number): Promise<number | null>;
  /** Resolves with the first stdout or stderr line matching `pattern`; rejects on exit or after `timeoutMs`. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<string>;
  /** `signal` (SIGTERM by default), then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs?: number, signal?: NodeJS.Signals): Promise<void>;
}

const running = new Set<ChildProcess>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const child of running) child.kill('SIGKILL');
      process.exit(130);
    });
  }
}

/** Variables every child gets from the benchmark's own environment. */
const INHERITED = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'LC_ALL', 'TZ', 'PYTHONPATH'] as const;

export interface SpawnOptions {
  cwd: string;
  env: Record<string, string>;
  /** Kept lines of output per stream (the tail, for error messages). */
  keepLines?: number;
}

export function spawnChild(name: string, command: string, args: readonly string[], options: SpawnOptions): Child {
  hookExit();
  const env: Record<string, string> = {};
  for (const key of INHERITED) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  Object.assign(env, options.env);
  const child = spawn(command, args, { cwd: options.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`could not spawn ${name} (${command})`);
  running.add(child);
  const keep = options.keepLines ?? 200;
  const stdout: string[] = [];
  const stderr: string[] = [];
  const listeners = new Set<(line: string) => void>();
  const collect = (into: string[]) => (line: string) => {
    into.push(line);
    if (into.length > keep) into.shift();
    for (const listener of listeners) listener(line);
  };
  createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', collect(stdout));
  createInterface({ input: child.stderr, crlfDelay: Infinity }).on('line', collect(stderr));

  let exited = false;
  let exitCode: number | null | undefined;
  // 'close' also waits for stdout and stderr to end, so every line is in by then.
  const gone = new Promise<void>((resolve) => {
    child.once('close', (code) => {
      exited = true;
      exitCode = code;
      running.delete(child);
      resolve();
    });
  });
  const pid = child.pid;

  return {
    name,
    pid,
    stdout,
    stderr,
    get exited() {
      return exited;
    },
    get exitCode() {
      return exitCode;
    },
    async waitForExit(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${name} still running after ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        await Promise.race([gone, timeout]);
        return exitCode ?? null;
      } finally {
        clearTimeout(timer);
      }
    },
    waitForLine(pattern, timeoutMs) {
      return new Promise<string>((resolve, reject) => {
        const done = (error: Error | null, line?: string) => {
          clearTimeout(timer);
          listeners.delete(onLine);
          if (error) reject(error);
          else resolve(line!);
        };
        const onLine = (line: string) => {
          if (pattern.test(line)) done(null, line);
        };
        const timer = setTimeout(
          () => done(new Error(`${name} printed no line matching ${pattern} within ${timeoutMs} ms\n${tail(stderr)}`)),
          timeoutMs,
        );
        listeners.add(onLine);
        for (const line of [...stdout, ...stderr]) if (pattern.test(line)) return done(null, line);
        void gone.then(() => done(new Error(`${name} exited before printing ${pattern}\n${tail(stderr)}`)));
      });
    },
    async stop(graceMs = 10_000, signal: NodeJS.Signals = 'SIGTERM') {
      if (exited) return;
      child.kill(signal);
      const timer = sleep(graceMs).then(() => 'timeout' as const);
      if ((await Promise.race([gone.then(() => 'gone' as const), timer])) === 'timeout' && !exited) {
        child.kill('SIGKILL');
        await Promise.race([gone, sleep(5000)]);
      }
    },
  };
}

function tail(lines: readonly string[], n = 20): string {
  return lines.slice(-n).join('\n');
}

/** Runs `command` to completion (bounded by `timeoutMs`); resolves with its stdout, rejects on a non-zero exit. */
export async function runToEnd(
  name: string,
  command: string,
  args: readonly string[],
  options: SpawnOptions & { timeoutMs: number },
): Promise<string> {
  const child = spawnChild(name, command, args, { keepLines: 1_000_000, ...options });
  try {
    await child.waitForExit(options.timeoutMs);
  } catch (error) {
    await child.stop(2000);
    throw error;
  }
  if (child.exitCode !== 0) throw new Error(`${name} exited with ${child.exitCode}\n${tail(child.stderr)}`);
  return child.stdout.join('\n');
}

/** Resident set size of `pid` in bytes (VmRSS from /proc), or null once it is gone. */
export function rssBytes(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Polls `url` until it answers 200 (GET /ready of a Conveyor role), bounded by `timeoutMs`. */
export async function waitHttpReady(child: Child, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (child.exited) throw new Error(`${child.name} exited before it was ready\n${tail(child.stderr)}`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await response.body?.cancel();
      if (response.status === 200) return;
      last = `HTTP ${response.status}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await sleep(50);
  }
  throw new Error(`${child.name} not ready at ${url} within ${timeoutMs} ms (${last})\n${tail(child.stderr)}`);
}
