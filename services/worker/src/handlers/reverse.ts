/** Handler for `reverse`: returns the text reversed by Unicode code point. */
import { reverse } from '@conveyor/shared';
import { defineHandler } from './handler.js';

// Spreading iterates code points, so a surrogate pair (an emoji, say) stays
// whole; `split('')` would reverse its halves into invalid UTF-16.
export const reverseHandler = defineHandler(reverse, ({ text }) => [...text].reverse().join(''));
