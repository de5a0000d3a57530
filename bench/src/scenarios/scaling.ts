/**
 * Scaling: Conveyor's end-to-end throughput (as in the throughput scenario)
 * with 1, 2 and 4 worker processes at concurrency 50 each, and with one
 * worker process at concurrency 1 ... 64. On a 2-core machine that also runs
 * RabbitMQ, Redis and the benchmark, more processes than cores cannot add
 * much; the curve shows where the machine, not the worker, is the limit.
 */
import type { ScenarioName } from '../settings.js';
import { forEachRun, type Context } from './context.js';
import { conveyorThroughput, RATE } from './throughput.js';

const SCENARIO: ScenarioName = 'scaling';

export const scalingSubject = {
  processes: (p: number, c: number) => `Conveyor · ${p} proc × ${c}`,
  concurrency: (c: number) => `Conveyor · 1 proc × ${c}`,
};

export async function runScaling(ctx: Context): Promise<void> {
  const { tasks, processes, concurrencies, concurrency } = ctx.settings.scaling;
  ctx.log(
    `scaling: ${tasks} tasks per point; processes ${processes.join(', ')} (× ${concurrency}); concurrency ${concurrencies.join(', ')} (1 process)`,
  );
  await forEachRun(ctx, async () => {
    for (const p of processes) {
      const r = await conveyorThroughput(ctx, { tasks, concurrency, processes: p });
      ctx.results.add(SCENARIO, scalingSubject.processes(p, concurrency), RATE, r.rate);
    }
    for (const c of concurrencies) {
      if (c === concurrency && processes.includes(1)) continue;
      const r = await conveyorThroughput(ctx, { tasks, concurrency: c, processes: 1 });
      ctx.results.add(SCENARIO, scalingSubject.concurrency(c), RATE, r.rate);
    }
  });
}
