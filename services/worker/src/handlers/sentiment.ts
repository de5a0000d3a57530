/** Handler for `sentiment`: scores English text with the AFINN-165 lexicon of the `sentiment` package. */
import Sentiment from 'sentiment';
import { sentiment } from '@conveyor/shared';
import { defineHandler } from './handler.js';

export type SentimentLabel = 'positive' | 'negative' | 'neutral';

export interface SentimentResult {
  readonly score: number;
  readonly comparative: number;
  readonly label: SentimentLabel;
}

// One analyzer per process: it is stateless between calls, and building it per task would be waste.
const analyzer = new Sentiment();

export const sentimentHandler = defineHandler(sentiment, ({ text }): SentimentResult => {
  const { score, comparative } = analyzer.analyze(text);
  const label: SentimentLabel = score > 0 ? 'positive' : score < 0 ? 'negative' : 'neutral';
  return { score, comparative, label };
});
