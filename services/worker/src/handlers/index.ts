/** The handlers of every built-in task type, one per type in `builtinTaskTypes`. */
import { computeHandler } from './compute.js';
import { emailSendHandler } from './email-send.js';
import { failHandler } from './fail.js';
import { flakyHandler } from './flaky.js';
import { greetHandler } from './greet.js';
import type { TaskHandler } from './handler.js';
import { hangHandler } from './hang.js';
import { noopHandler } from './noop.js';
import { reverseHandler } from './reverse.js';
import { sentimentHandler } from './sentiment.js';
import { sleepHandler } from './sleep.js';

export const builtinHandlers: readonly TaskHandler[] = Object.freeze([
  noopHandler,
  sleepHandler,
  computeHandler,
  greetHandler,
  reverseHandler,
  sentimentHandler,
  emailSendHandler,
  failHandler,
  flakyHandler,
  hangHandler,
]);
