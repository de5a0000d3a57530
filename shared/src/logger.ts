/** The structured logger of every role: pino, JSON lines, one base binding per process. */
import { pino, type Logger } from 'pino';
import type { Config } from './config.js';

export type { Logger };

export function createLogger(
  config: Pick<Config, 'role' | 'logLevel'>,
  bindings: Record<string, unknown> = {},
): Logger {
  return pino({ level: config.logLevel, base: { role: config.role, pid: process.pid, ...bindings } });
}
