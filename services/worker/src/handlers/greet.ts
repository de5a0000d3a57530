/** Handler for `greet`: returns "Hello <name>", the hello-world of task queues. */
import { greet } from '@conveyor/shared';
import { defineHandler } from './handler.js';

export const greetHandler = defineHandler(greet, ({ name }) => `Hello ${name}`);
