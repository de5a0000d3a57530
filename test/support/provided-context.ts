/**
 * What the integration global setup hands to every test file through
 * vitest's `provide`/`inject`. Imported (for its types) by the modules that
 * call either side, so the augmentation is in scope wherever they are used.
 */
declare module 'vitest' {
  export interface ProvidedContext {
    /** The RabbitMQ this run uses, e.g. amqp://guest:guest@localhost:5672 */
    amqpUrl: string;
    /** The Redis this run uses, e.g. redis://localhost:6379/0 */
    redisUrl: string;
  }
}

export {};
