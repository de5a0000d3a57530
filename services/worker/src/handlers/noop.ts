/** Handler for `noop`: returns null, so a benchmark measures the pipeline and nothing else. */
import { noop } from '@conveyor/shared';
import { defineHandler } from './handler.js';

export const noopHandler = defineHandler(noop, () => null);
