/**
 * Global setup of the `integration` vitest project: decides which RabbitMQ
 * and Redis this run talks to, hands their URLs to the tests
 * (`inject('amqpUrl')`, `inject('redisUrl')`) and to every process the tests
 * spawn (`process.env.AMQP_URL`, `process.env.REDIS_URL`), and stops whatever
 * it started.
 *
 * For each service the first match wins:
 *   1. the URL in the environment (AMQP_URL / REDIS_URL). It must answer: an
 *      explicit choice is never silently replaced by another server;
 *   2. the local default (amqp://guest:guest@localhost:5672,
 *      redis://localhost:6379/0) if it answers a real handshake;
 *   3. a throwaway container (rabbitmq:3-management, redis:7) started with
 *      testcontainers when a Docker engine is reachable;
 *   4. otherwise the run fails with a message saying how to provide them.
 *
 * Tests isolate themselves by prefix (see services.ts), so sharing a
 * long-running local server between runs and developers is safe.
 */
import type { StartedTestContainer } from 'testcontainers';
import type { TestProject } from 'vitest/node';
import './provided-context.js';
import { probeAmqp, probeRedis, redact } from './probes.js';
import { waitFor } from './wait.js';

interface ServiceSpec {
  label: string;
  envVar: 'AMQP_URL' | 'REDIS_URL';
  localUrl: string;
  probe(url: string, timeoutMs?: number): Promise<void>;
  image: string;
  port: number;
  /** Logged once the server accepts clients. */
  readyLog: RegExp;
  command?: string[];
  url(host: string, port: number): string;
}

const RABBITMQ: ServiceSpec = {
  label: 'RabbitMQ',
  envVar: 'AMQP_URL',
  localUrl: 'amqp://guest:guest@localhost:5672',
  probe: probeAmqp,
  image: 'rabbitmq:3-management',
  port: 5672,
  readyLog: /Server startup complete/,
  // The official image lets `guest` log in from outside the container.
  url: (host, port) => `amqp://guest:guest@${host}:${port}`,
};

const REDIS: ServiceSpec = {
  label: 'Redis',
  envVar: 'REDIS_URL',
  localUrl: 'redis://localhost:6379/0',
  probe: probeRedis,
  image: 'redis:7',
  port: 6379,
  readyLog: /Ready to accept connections/,
  command: ['redis-server', '--save', '', '--appendonly', 'no'],
  url: (host, port) => `redis://${host}:${port}/0`,
};

/** How long a server given in the environment gets to answer before the run fails. */
const EXPLICIT_PROBE_MS = 5000;
/** Local probes are short: a server on localhost answers in milliseconds or not at all. */
const LOCAL_PROBE_MS = 2000;
/** Pulling an image on a cold machine dominates; RabbitMQ itself boots in ~10 s. */
const CONTAINER_STARTUP_MS = 180_000;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started: StartedTestContainer[] = [];
  const stopStarted = async () => {
    await Promise.all(
      started.splice(0).map((container) =>
        container.stop().catch((error: unknown) => {
          console.warn(`[integration] could not stop container ${container.getId()}: ${String(error)}`);
        }),
      ),
    );
  };

  let amqpUrl: string;
  let redisUrl: string;
  try {
    const docker = new DockerAvailability();
    const failures: string[] = [];
    const resolveOrRecord = async (spec: ServiceSpec) => {
      try {
        return await resolveService(spec, docker, started);
      } catch (error) {
        if (!(error instanceof ServiceUnavailable)) throw error;
        failures.push(error.message);
        return undefined;
      }
    };
    const amqp = await resolveOrRecord(RABBITMQ);
    const redis = await resolveOrRecord(REDIS);
    if (amqp === undefined || redis === undefined) throw new Error(unavailableMessage(failures));
    amqpUrl = amqp;
    redisUrl = redis;
  } catch (error) {
    await stopStarted();
    throw error;
  }

  project.provide('amqpUrl', amqpUrl);
  project.provide('redisUrl', redisUrl);
  // Roles spawned by tests (and anything else that reads the environment) use the same servers.
  process.env.AMQP_URL = amqpUrl;
  process.env.REDIS_URL = redisUrl;

  return stopStarted;
}

class ServiceUnavailable extends Error {}

async function resolveService(
  spec: ServiceSpec,
  docker: DockerAvailability,
  started: StartedTestContainer[],
): Promise<string> {
  const fromEnv = process.env[spec.envVar];
  if (fromEnv) {
    try {
      await spec.probe(fromEnv, EXPLICIT_PROBE_MS);
    } catch (error) {
      throw new Error(
        `${spec.envVar}=${redact(fromEnv)} is set but ${spec.label} does not answer there: ${message(error)}. ` +
          `Start it, fix the URL, or unset ${spec.envVar} to use localhost or Docker.`,
        { cause: error },
      );
    }
    announce(spec, fromEnv, `from ${spec.envVar}`);
    return fromEnv;
  }

  let localFailure: string;
  try {
    await spec.probe(spec.localUrl, LOCAL_PROBE_MS);
    announce(spec, spec.localUrl, 'local');
    return spec.localUrl;
  } catch (error) {
    localFailure = message(error);
  }

  const dockerFailure = await docker.unavailableReason();
  if (dockerFailure !== undefined) {
    throw new ServiceUnavailable(
      `${spec.label}: ${spec.envVar} is not set; ${redact(spec.localUrl)} does not answer (${localFailure}); ` +
        `no Docker engine for testcontainers (${dockerFailure}).`,
    );
  }

  const { GenericContainer, Wait } = await import('testcontainers');
  let container = new GenericContainer(spec.image)
    .withExposedPorts(spec.port)
    .withWaitStrategy(Wait.forLogMessage(spec.readyLog))
    .withStartupTimeout(CONTAINER_STARTUP_MS);
  if (spec.command) container = container.withCommand(spec.command);
  console.info(`[integration] ${spec.label}: starting ${spec.image} with testcontainers`);
  const running = await container.start();
  started.push(running);
  const url = spec.url(running.getHost(), running.getMappedPort(spec.port));
  // The ready log line precedes the listener by a moment on some versions.
  await waitFor(
    () =>
      spec.probe(url, LOCAL_PROBE_MS).then(
        () => true,
        () => false,
      ),
    { timeoutMs: 30_000, intervalMs: 500, message: `${spec.label} container at ${redact(url)} to answer` },
  );
  announce(spec, url, `container ${running.getId().slice(0, 12)}`);
  return url;
}

/** Asks testcontainers once whether a Docker (or compatible) engine is reachable. */
class DockerAvailability {
  #answer: Promise<string | undefined> | undefined;

  /** undefined when an engine is reachable, else why not. */
  unavailableReason(): Promise<string | undefined> {
    this.#answer ??= (async () => {
      try {
        const { getContainerRuntimeClient } = await import('testcontainers');
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('no answer within 20 s')), 20_000);
        });
        await Promise.race([getContainerRuntimeClient(), timeout]).finally(() => clearTimeout(timer));
        return undefined;
      } catch (error) {
        return message(error);
      }
    })();
    return this.#answer;
  }
}

function unavailableMessage(failures: readonly string[]): string {
  return [
    'Integration tests need a real RabbitMQ and a real Redis; these could not be found:',
    ...failures.map((f) => `  - ${f}`),
    'Provide them in one of these ways:',
    '  - bash infra/local/prepare.sh   (installs them with apt-get when run as root on Debian/Ubuntu, then starts them)',
    '  - install and start them yourself:',
    '      apt-get install -y rabbitmq-server redis-server',
    '      rabbitmq-server -detached',
    '      redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
    '  - point the tests at running servers: AMQP_URL=amqp://user:pass@host:5672 REDIS_URL=redis://host:6379/0',
    '  - start a Docker engine: the tests then run rabbitmq:3-management and redis:7 with testcontainers',
  ].join('\n');
}

function announce(spec: ServiceSpec, url: string, source: string): void {
  console.info(`[integration] ${spec.label}: ${redact(url)} (${source})`);
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
