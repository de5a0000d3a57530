/**
 * The broker drops the api's and the worker's connections (as
 * `rabbitmqctl close_all_connections` does, a server-initiated
 * connection.close): both notice, /ready goes false, amqplib's recovery
 * reconnects and re-runs the setup (confirm channel, topology, consumer),
 * /ready comes back and work flows again, with no process restarted.
 *
 * Only this test's connections are closed (matched by the prefix in their
 * connection names): the broker is shared with whatever else runs on the
 * machine, and `close_all_connections` would break it.
 */
import { expect, it } from 'vitest';
import { startRole } from '../support/processes.js';
import { testEnv, useTestPrefix } from '../support/services.js';
import { sleep } from '../support/wait.js';
import { isReady, mapConcurrent, submit, waitAllTerminal, waitForReadiness } from './client.js';
import { closeConnectionsNamed, skipUnlessRabbitControllable, summary } from './infra.js';

const prefix = useTestPrefix();

it('api and worker reconnect after the broker closes their connections, without a restart', async (context) => {
  await skipUnlessRabbitControllable(context, 'connection close');
  const api = await startRole('api', testEnv(prefix));
  const worker = await startRole('worker', testEnv(prefix, { WORKER_NAME: `${prefix}-w` }));
  const batch = async (n: number) => {
    const submitted = await mapConcurrent(Array.from({ length: n }), 8, () =>
      submit(api.url, { type: 'greet', kwargs: { name: 'again' } }),
    );
    expect(submitted.map((s) => s.status)).toEqual(Array(n).fill(202));
    const tasks = await waitAllTerminal(
      api.url,
      submitted.map((s) => s.id),
      30_000,
    );
    expect(tasks.every((t) => t.state === 'SUCCESS' && t.result === 'Hello again')).toBe(true);
  };
  await batch(20);

  // Watch /ready from before the close: recovery can be quicker than rabbitmqctl returns.
  const seen = { api: false, worker: false };
  let watching = true;
  const watch = (async () => {
    while (watching) {
      const [a, w] = await Promise.all([isReady(api.url), isReady(worker.url)]);
      if (!a) seen.api = true;
      if (!w) seen.worker = true;
      await sleep(20);
    }
  })();
  const closedAt = Date.now();
  const closed = await closeConnectionsNamed((name) => name.includes(prefix), 'fault test');
  let recoveredMs: number;
  try {
    expect(closed).toBe(2);
    await waitForReadiness(api.url, true, 30_000);
    await waitForReadiness(worker.url, true, 30_000);
    recoveredMs = Date.now() - closedAt;
  } finally {
    watching = false;
    await watch;
  }
  expect(seen).toEqual({ api: true, worker: true });

  await batch(20);
  expect(api.exitStatus).toBeUndefined();
  expect(worker.exitStatus).toBeUndefined();
  summary('broker-connections-closed', { connectionsClosed: closed, msUntilBothReady: recoveredMs });
}, 120_000);
