/**
 * The api's RabbitMQ connection as a named plugin: one connection and one
 * confirm channel per process, shared by every request (publishes are
 * pipelined, each request awaits its own confirm). The connection recovers
 * by itself; the api starts and answers 503 while the broker is away.
 */
import { BrokerConnection, buildTopology, settleWithin, TaskPublisher, type Logger } from '@conveyor/shared';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { STARTUP_WAIT_MS } from '../startup.js';

declare module 'fastify' {
  interface FastifyInstance {
    publisher: TaskPublisher;
  }
}

export interface BrokerPluginOptions {
  /** Shown in the RabbitMQ management UI. */
  connectionName: string;
}

async function broker(app: FastifyInstance, options: BrokerPluginOptions): Promise<void> {
  const { config } = app;
  // app.log is the pino instance given to buildApp, typed as Fastify's narrower base logger.
  const logger = app.log.child({ component: 'broker' }) as Logger;
  const topology = buildTopology({ prefix: config.prefix, exchange: config.exchange, queues: config.queues });
  const publisher = new TaskPublisher(topology, logger);
  const connection = await BrokerConnection.open({
    url: config.amqpUrl,
    name: options.connectionName,
    logger,
    // Runs after every (re)connect: a new confirm channel and the topology asserted again.
    setup: (model) => publisher.attach(model),
  });
  app.decorate('publisher', publisher);
  app.addHook('onClose', async () => {
    // onClose runs after the server stopped taking requests, so no publish is left to confirm.
    await publisher.close();
    await connection.close();
  });
  await settleWithin(connection.waitForConnect(), STARTUP_WAIT_MS);
}

export const brokerPlugin = fp(broker, {
  name: 'conveyor-broker',
  fastify: '5.x',
  decorators: { fastify: ['config'] },
});
