/**
 * The producer API for programs: submit tasks and wait for their results
 * without going through HTTP. It is what the api uses per request, packaged
 * with its own connections (one Redis client, one subscriber for waiting,
 * one broker connection with one confirm channel).
 */
import { hostname } from 'node:os';
import { BrokerConnection } from '../broker/broker-connection.js';
import { TaskPublisher } from '../broker/task-publisher.js';
import { buildTopology } from '../broker/topology.js';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { isTerminal } from '../states.js';
import { createRedis } from '../redis.js';
import type { TaskRecord } from '../store/task-record.js';
import { TaskStore } from '../store/task-store.js';
import { TaskRegistry } from '../tasks/registry.js';
import { ResultWaiter } from './result-waiter.js';
import {
  prepareSubmission,
  submitPrepared,
  submitTask,
  type Accepted,
  type SubmitContext,
  type Submission,
} from './submit-task.js';

export class Producer {
  readonly #context: SubmitContext;
  readonly #broker: BrokerConnection;
  readonly #waiter: ResultWaiter;

  private constructor(context: SubmitContext, broker: BrokerConnection, waiter: ResultWaiter) {
    this.#context = context;
    this.#broker = broker;
    this.#waiter = waiter;
  }

  /** Connects to Redis and RabbitMQ (asserting the topology); resolves once both are up. */
  static async connect(config: Config, logger: Logger, registry = new TaskRegistry()): Promise<Producer> {
    const origin = `producer@${hostname()}.${process.pid}`;
    const redis = createRedis(config.redisUrl, { failFast: false, name: origin });
    const store = new TaskStore(redis, config);
    const publisher = new TaskPublisher(buildTopology(config), logger);
    const broker = await BrokerConnection.open({
      url: config.amqpUrl,
      name: origin,
      logger,
      setup: (model) => publisher.attach(model),
    });
    await broker.waitForConnect();
    const waiter = new ResultWaiter(store, redis.duplicate());
    return new Producer({ config, registry, store, publisher, origin, logger }, broker, waiter);
  }

  /** Validates, records PENDING, publishes; resolves once the broker confirmed. */
  submit(submission: Submission): Promise<Accepted> {
    return submitTask(this.#context, submission);
  }

  /** The record once terminal (or as it is after `timeoutMs`); null for an unknown id. */
  wait(id: string, timeoutMs: number, signal?: AbortSignal): Promise<TaskRecord | null> {
    return this.#waiter.wait(id, timeoutMs, signal);
  }

  /**
   * Submits and waits for the result in one call, like Celery's
   * `apply_async().get()`. The wait starts as soon as the PENDING record is
   * written, so the task can run while the broker's confirm is on its way.
   * Resolves with the record as soon as the task is terminal, even before
   * the confirm: a worker ran the task, so the broker had it (the confirm
   * includes the broker's disk write, which the delivery does not wait
   * for). Otherwise resolves once the broker confirmed, with the record as
   * it is after `timeoutMs` or on `signal`; rejects as `submit` does, and
   * then stops waiting.
   */
  async submitAndWait(submission: Submission, timeoutMs: number, signal?: AbortSignal): Promise<TaskRecord | null> {
    const prepared = prepareSubmission(this.#context, submission);
    const stopWaiting = new AbortController();
    const stop = () => stopWaiting.abort();
    signal?.addEventListener('abort', stop, { once: true });
    try {
      return await new Promise<TaskRecord | null>((resolve, reject) => {
        let waiting: Promise<TaskRecord | null> | undefined;
        const submitted = submitPrepared(this.#context, prepared, undefined, (id) => {
          waiting = this.#waiter.wait(id, timeoutMs, stopWaiting.signal);
          // Observed at once: while the confirm is awaited, a failed wait must not go unhandled.
          waiting.then(
            (record) => {
              if (record !== null && isTerminal(record.state)) resolve(record);
            },
            () => undefined,
          );
        });
        // A confirm that fails after the task finished changes nothing: the submit's
        // cleanup only removes a record that is still PENDING.
        submitted.then(
          () => waiting!.then(resolve, reject),
          (error: Error) => {
            stop();
            reject(error);
          },
        );
      });
    } finally {
      signal?.removeEventListener('abort', stop);
    }
  }

  get(id: string): Promise<TaskRecord | null> {
    return this.#context.store.get(id);
  }

  async close(): Promise<void> {
    await this.#waiter.close();
    await this.#context.publisher.close();
    await this.#broker.close();
    await this.#context.store.close();
  }
}
