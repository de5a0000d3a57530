/**
 * The HTTP ceiling: a bare Fastify process with the same shape of route as
 * Conveyor's `POST /api/tasks` -- JSON body parsed and validated against a
 * schema, a 202 with the same body and Location header, a pino logger at
 * warn -- but no Redis write and no publish. Listens on PORT; prints
 * BENCH-READY once listening; SIGTERM closes it.
 */
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';

const app = Fastify({ logger: { level: 'warn' } });

const accepted = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    type: { type: 'string' },
    queue: { type: 'string' },
    state: { type: 'string' },
    eta: { type: ['string', 'null'] },
    expires: { type: ['string', 'null'] },
    links: { type: 'object', properties: { self: { type: 'string' } } },
  },
} as const;

app.post(
  '/api/tasks',
  {
    schema: {
      body: {
        type: 'object',
        required: ['type'],
        properties: { type: { type: 'string', minLength: 1 }, kwargs: { type: 'object' } },
        additionalProperties: false,
      },
      response: { 202: accepted },
    },
  },
  async (request, reply) => {
    const { type } = request.body as { type: string };
    const id = randomUUID();
    const self = `/api/tasks/${id}`;
    return reply
      .code(202)
      .header('Location', self)
      .send({ id, type, queue: 'default', state: 'PENDING', eta: null, expires: null, links: { self } });
  },
);

await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) });
console.log('BENCH-READY');

const close = () => {
  app.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGTERM', close);
process.once('SIGINT', close);
