/**
 * autocannon, driven programmatically. Latency percentiles come from every
 * 2xx response's own duration (autocannon's float milliseconds, via its
 * tracker), not from its histogram, which records whole milliseconds.
 */
import autocannon from 'autocannon';
import { percentiles } from './stats.js';

export interface LoadOptions {
  url: string;
  body: string;
  connections: number;
  durationSeconds: number;
  /** Requests per second across all connections (autocannon's overallRate); unset = as fast as it goes. */
  overallRate?: number;
}

export interface LoadResult {
  /** 2xx responses per second. */
  rps: number;
  p50: number;
  p99: number;
  /** autocannon's own p99 from its histogram (whole ms; corrected for coordinated omission when rate-limited). */
  histogramP99: number;
  non2xx: number;
  errors: number;
}

export async function load(options: LoadOptions): Promise<LoadResult> {
  const samples: number[] = [];
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: options.body,
        connections: options.connections,
        duration: options.durationSeconds,
        ...(options.overallRate === undefined ? {} : { overallRate: options.overallRate }),
      },
      (error, res) => (error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve(res)),
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) samples.push(responseTime);
    });
  });
  const [p50, p99] = percentiles(samples, [50, 99]);
  return {
    rps: result['2xx'] / result.duration,
    p50: p50!,
    p99: p99!,
    histogramP99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}
