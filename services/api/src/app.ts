/**
 * The api's Fastify app, built by a factory that never listens: server.ts
 * listens, tests call `app.inject()`. Everything the app needs comes in
 * through `options`; nothing here reads the environment.
 */
import { hostname as osHostname } from 'node:os';
import { createLogger, type Config, type Logger } from '@conveyor/shared';
import { registerAjvFormats, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { registerErrorHandlers } from './errors.js';
import { brokerPlugin } from './plugins/broker.js';
import { metricsPlugin } from './plugins/metrics.js';
import { redisPlugin } from './plugins/redis.js';
import { taskStorePlugin } from './plugins/task-store.js';
import { healthRoutes } from './routes/health.js';
import { taskTypeRoutes } from './routes/task-types.js';
import { taskRoutes } from './routes/tasks.js';
import { validatorCompiler } from './validation.js';

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
  }
}

export type ApiApp = FastifyInstance<Server, IncomingMessage, ServerResponse, FastifyBaseLogger, TypeBoxTypeProvider>;

export interface BuildAppOptions {
  config: Config;
  /** Defaults to a pino logger at `config.logLevel`. */
  logger?: Logger;
  /** Names this process to the broker, Redis and in message `origin` headers; defaults to os.hostname(). */
  hostname?: string;
}

// Body and query formats (date-time, uuid, …) are checked with ajv-formats' full validators.
registerAjvFormats();

export function buildApp({ config, logger = createLogger(config), hostname = osHostname() }: BuildAppOptions): ApiApp {
  // Typed with Fastify's base logger so plugins written against the plain FastifyInstance fit.
  const app = Fastify<Server, IncomingMessage, ServerResponse, FastifyBaseLogger>({
    loggerInstance: logger,
    bodyLimit: config.maxBodyBytes,
  })
    // TypeBox's own checker: no type coercion and no silent removal of unknown body fields.
    .setValidatorCompiler(validatorCompiler)
    .withTypeProvider<TypeBoxTypeProvider>();

  app.decorate('config', config);
  // The api takes JSON only; anything else is a 415, not a string handed to validation.
  app.removeContentTypeParser('text/plain');
  registerErrorHandlers(app);

  // The prefix tells installations that share a broker or a Redis apart (list_connections, CLIENT LIST).
  const name = `conveyor-api@${hostname}/${config.prefix}`;
  app.register(metricsPlugin);
  app.register(redisPlugin, { connectionName: name });
  app.register(brokerPlugin, { connectionName: name });
  app.register(taskStorePlugin);

  app.register(healthRoutes);
  app.register(taskTypeRoutes);
  app.register(taskRoutes, { origin: `api@${hostname}` });
  return app;
}
