/**
 * Real role processes for end-to-end tests: `node services/<role>/dist/server.js`
 * (or a test fixture script standing in for a role, see `startScript`) with an
 * explicit environment, a free port, captured output and a bounded wait for
 * `GET /ready`. Every process started here is tracked and stopped by
 * `stopAllRoles()` (run after each test file by setup-file.ts), and killed
 * when the test worker exits; nothing else is ever signalled.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve as resolvePath } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import getPort from 'get-port';
import { sleep } from './wait.js';

export type RoleName = 'api' | 'worker';

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunningRole {
  readonly role: RoleName;
  readonly pid: number;
  readonly port: number;
  /** http://127.0.0.1:<port> — the api itself, or the worker's health and metrics server. */
  readonly url: string;
  /** Output lines as they arrive (pino writes one JSON record per line). */
  readonly stdout: string[];
  readonly stderr: string[];
  /** Set once the process has exited. */
  readonly exitStatus: ExitStatus | undefined;
  /** Sends `sig`; false if the process is already gone. */
  signal(sig: NodeJS.Signals): boolean;
  /** Resolves when the process has exited and its output is flushed; rejects after `timeoutMs`. */
  waitForExit(timeoutMs?: number): Promise<ExitStatus>;
  /** SIGTERM, then SIGKILL if it is still running after `graceMs`. */
  stop(graceMs?: number): Promise<ExitStatus>;
}

export interface StartRoleOptions {
  /** Bound on the wait for `GET /ready` to answer 200 (default 30 s). */
  readyTimeoutMs?: number;
  /** false: return as soon as the process is spawned (e.g. to test a start-up failure). */
  waitReady?: boolean;
}

export interface StartScriptOptions extends StartRoleOptions {
  /** The role the script plays, as `RunningRole.role` reports it (default 'worker'). */
  role?: RoleName;
}

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Variables a Node process needs from the parent; everything else comes from the test's env. */
const INHERITED = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'LC_ALL', 'TZ', 'AMQP_URL', 'REDIS_URL'] as const;
/** How long a stopped role may take after SIGKILL before we call it stuck (the kernel needs milliseconds). */
const KILL_WAIT_MS = 5000;

interface Tracked {
  handle: RunningRole;
  alive(): boolean;
  kill(sig: NodeJS.Signals): void;
}

// One registry per test worker process, shared by every copy of this module
// (vitest re-evaluates modules for each test file), so the exit hook below is
// installed once and sees every role this worker started.
const registryKey = Symbol.for('conveyor.test.runningRoles');
const globalRegistry = globalThis as typeof globalThis & { [registryKey]?: Set<Tracked> };
const running: Set<Tracked> =
  globalRegistry[registryKey] ??
  (() => {
    const set = new Set<Tracked>();
    globalRegistry[registryKey] = set;
    // A test worker that exits (timeout, crash, Ctrl-C) takes its roles with it.
    // Only pids started here are signalled, and only while they are known alive.
    process.once('exit', () => {
      for (const t of set) t.kill('SIGKILL');
    });
    return set;
  })();

/**
 * Starts a role with `env` (see testEnv in services.ts) on a free port
 * (unless env.PORT is given) and waits until it reports ready. On a start-up
 * failure or timeout the process is stopped and the error carries its output.
 */
export async function startRole(
  role: RoleName,
  env: Readonly<Record<string, string>>,
  options: StartRoleOptions = {},
): Promise<RunningRole> {
  const entry = join(REPO_ROOT, 'services', role, 'dist', 'server.js');
  if (!existsSync(entry)) throw new Error(`${entry} does not exist: run \`pnpm build\` first`);
  return startProcess(role, entry, env, options);
}

/**
 * Starts `node <script>` (a path, absolute or relative to the repository
 * root) exactly as `startRole` starts a role: same inherited variables, free
 * port in PORT, tracking, output capture and wait for `GET /ready`. For
 * fixtures that assemble a role from the built modules, e.g. a worker with
 * test-only task types.
 */
export async function startScript(
  script: string,
  env: Readonly<Record<string, string>>,
  { role = 'worker', ...options }: StartScriptOptions = {},
): Promise<RunningRole> {
  const entry = resolvePath(REPO_ROOT, script);
  if (!existsSync(entry)) throw new Error(`${entry} does not exist`);
  return startProcess(role, entry, env, options);
}

async function startProcess(
  role: RoleName,
  entry: string,
  env: Readonly<Record<string, string>>,
  { readyTimeoutMs = 30_000, waitReady = true }: StartRoleOptions,
): Promise<RunningRole> {
  const port = env.PORT !== undefined ? Number(env.PORT) : await getPort({ host: '127.0.0.1' });
  const childEnv: Record<string, string> = {};
  for (const name of INHERITED) {
    const value = process.env[name];
    if (value !== undefined) childEnv[name] = value;
  }
  Object.assign(childEnv, { HOST: '127.0.0.1' }, env, { PORT: String(port) });

  const child = spawn(process.execPath, ['--enable-source-maps', entry], {
    cwd: REPO_ROOT,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', (line) => stdout.push(line));
  createInterface({ input: child.stderr, crlfDelay: Infinity }).on('line', (line) => stderr.push(line));

  let alive = child.pid !== undefined;
  let exitStatus: ExitStatus | undefined;
  // 'exit' marks the pid as gone (never signal a recycled pid); 'close' also waits for the output.
  child.once('exit', () => {
    alive = false;
  });
  const closed = new Promise<ExitStatus>((resolve) => {
    child.once('close', (code, signal) => resolve((exitStatus = { code, signal })));
    child.once('error', (error) => {
      alive = false;
      stderr.push(`spawn failed: ${error.message}`);
      resolve((exitStatus ??= { code: null, signal: null }));
    });
  });

  const waitForExit = async (timeoutMs = 30_000): Promise<ExitStatus> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${role} (pid ${child.pid}) still running after ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    return Promise.race([closed, timeout]).finally(() => clearTimeout(timer));
  };

  const tracked: Tracked = {
    alive: () => alive,
    kill: (sig) => {
      if (alive) child.kill(sig);
    },
    handle: {
      role,
      pid: child.pid ?? -1,
      port,
      url: `http://127.0.0.1:${port}`,
      stdout,
      stderr,
      get exitStatus() {
        return exitStatus;
      },
      signal: (sig) => alive && child.kill(sig),
      waitForExit,
      stop: async (graceMs = 15_000) => {
        if (alive) {
          child.kill('SIGTERM');
          try {
            return await waitForExit(graceMs);
          } catch {
            tracked.kill('SIGKILL');
          }
        }
        return waitForExit(KILL_WAIT_MS);
      },
    },
  };
  running.add(tracked);
  void closed.then(() => running.delete(tracked));

  if (waitReady) {
    try {
      await waitUntilReady(tracked.handle, closed, readyTimeoutMs);
    } catch (error) {
      await tracked.handle.stop(2000).catch(() => undefined);
      throw new Error(`${(error as Error).message}\n${describeOutput(tracked.handle)}`, { cause: error });
    }
  }
  return tracked.handle;
}

/** Stops every role this test worker started and that is still running. */
export async function stopAllRoles(graceMs = 10_000): Promise<void> {
  await Promise.all([...running].map((t) => t.handle.stop(graceMs).catch(() => undefined)));
}

/** The lines of `lines` that are JSON objects (pino records), parsed; other lines are skipped. */
export function jsonLines(lines: readonly string[]): Record<string, unknown>[] {
  const records: Record<string, unknown>[] = [];
  for (const line of lines) {
    if (!line.startsWith('{')) continue;
    try {
      const value: unknown = JSON.parse(line);
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
        records.push(value as Record<string, unknown>);
      }
    } catch {
      // a partial or non-JSON line (e.g. a Node warning): not a log record
    }
  }
  return records;
}

async function waitUntilReady(role: RunningRole, closed: Promise<ExitStatus>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: ExitStatus | undefined;
  void closed.then((status) => (exited = status));
  let last = 'no answer yet';
  for (;;) {
    if (exited) {
      throw new Error(
        `${role.role} exited before it was ready (code ${exited.code}, signal ${exited.signal ?? 'none'})`,
      );
    }
    try {
      const response = await fetch(`${role.url}/ready`, { signal: AbortSignal.timeout(1000) });
      await response.body?.cancel();
      if (response.status === 200) return;
      last = `GET /ready answered ${response.status}`;
    } catch (error) {
      last = `GET /ready failed: ${(error as Error).message}`;
    }
    if (Date.now() >= deadline) {
      throw new Error(`${role.role} (pid ${role.pid}) not ready at ${role.url} within ${timeoutMs} ms (${last})`);
    }
    await sleep(100);
  }
}

function describeOutput(role: RunningRole, maxLines = 40): string {
  const tail = (lines: readonly string[]) =>
    lines.length === 0
      ? '  (empty)'
      : lines
          .slice(-maxLines)
          .map((l) => `  ${l}`)
          .join('\n');
  return `--- ${role.role} stderr ---\n${tail(role.stderr)}\n--- ${role.role} stdout ---\n${tail(role.stdout)}`;
}
