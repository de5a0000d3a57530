import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildTopology, delayTierFor } from '../src/broker/topology.js';
import { StateRank, TaskStates } from '../src/states.js';
import { redisKeys } from '../src/store/keys.js';
import { TaskRegistry } from '../src/tasks/registry.js';

describe('state precedence', () => {
  it('is the same in TypeScript and in transition.lua', () => {
    const lua = readFileSync(new URL('../lua/transition.lua', import.meta.url), 'utf8');
    const rank = /local RANK = \{([^}]*)\}/.exec(lua)![1]!;
    const parsed = Object.fromEntries(rank.split(',').map((pair) => pair.split('=').map((s) => s.trim())));
    expect(Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, Number(v)]))).toEqual(StateRank);
    const index = /local INDEX = \{([^}]*)\}/.exec(lua)![1]!;
    const order = index.split(',').map((pair) => pair.split('=')[0]!.trim());
    expect(order).toEqual([...TaskStates]);
  });
});

describe('redis keys', () => {
  it('namespaces every key under the prefix', () => {
    const keys = redisKeys('acme');
    expect(keys.task('abc')).toBe('acme:task:abc');
    expect(keys.stateIndexes).toEqual(TaskStates.map((s) => `acme:state:${s}`));
    for (const key of [keys.timeIndex, keys.events, keys.minuteStats(1), keys.worker('w'), keys.workers]) {
      expect(key.startsWith('acme:')).toBe(true);
    }
    expect(keys.all).toBe('acme:*');
  });
});

describe('topology', () => {
  const topology = buildTopology({ prefix: 'acme', exchange: 'acme.tasks', queues: ['default', 'email'] });

  it('binds each task queue by its own name and dead-letters it', () => {
    expect(topology.queueName('email')).toBe('acme.email');
    expect(topology.bindings).toContainEqual({ queue: 'acme.email', exchange: 'acme.tasks', routingKey: 'acme.email' });
    const email = topology.queues.find((q) => q.name === 'acme.email')!;
    expect(email.options.arguments).toEqual({ 'x-dead-letter-exchange': 'acme.dead' });
  });

  it('routes every delay tier back into the task exchange after its TTL', () => {
    for (const ms of topology.delayTiers) {
      const queue = topology.queues.find((q) => q.name === `acme.delay.${ms}`)!;
      expect(queue.options.arguments).toEqual({
        'x-message-ttl': ms,
        'x-dead-letter-exchange': 'acme.tasks',
      });
    }
  });

  it.each([
    [1, 100],
    [99, 100],
    [100, 100],
    [250, 200],
    [1000, 800],
    [60_000, 51_200],
  ])('picks for %i ms the longest tier that does not overshoot (%i)', (remaining, tier) => {
    expect(delayTierFor(topology, remaining)).toBe(tier);
  });

  it('reaches any delay in a logarithmic number of hops, never early', () => {
    for (const delay of [150, 1234, 59_999, 3_600_000, 20 * 86_400_000]) {
      let remaining = delay;
      let hops = 0;
      while (remaining > 0) {
        remaining -= delayTierFor(topology, remaining);
        hops++;
      }
      expect(remaining).toBeGreaterThan(-100);
      expect(hops).toBeLessThanOrEqual(
        Math.ceil(Math.log2(delay / 100)) + 1 + Math.floor(delay / topology.delayTiers.at(-1)!),
      );
    }
  });
});

describe('task registry', () => {
  const registry = new TaskRegistry();

  it('registers every built-in type once', () => {
    expect(registry.list().map((t) => t.name)).toEqual([
      'noop',
      'sleep',
      'compute',
      'greet',
      'reverse',
      'sentiment',
      'email.send',
      'fail',
      'flaky',
      'hang',
    ]);
  });

  it('accepts valid kwargs', () => {
    expect(() => registry.validateKwargs('compute', { operation: 'sum_range', input: 1_000_000 })).not.toThrow();
    expect(() => registry.validateKwargs('email.send', { to: 'a@b.co', subject: 's', text: 't' })).not.toThrow();
  });

  it.each([
    ['sleep', {}, 'kwargs.duration'],
    ['sleep', { duration: 'long' }, 'kwargs.duration'],
    ['sleep', { duration: 1, extra: true }, 'kwargs.extra'],
    ['compute', { operation: 'factorial', input: 1e6 }, 'kwargs.input'],
    ['compute', { operation: 'cube', input: 2 }, 'kwargs.operation'],
    ['email.send', { to: 'not-an-address', subject: 's', text: 't' }, 'kwargs.to'],
    ['greet', { name: '' }, 'kwargs.name'],
  ])('rejects %s %j at %s', (type, kwargs, field) => {
    expect(() => registry.validateKwargs(type, kwargs)).toThrow(
      expect.objectContaining({ code: 'CNV_INVALID_KWARGS', field }),
    );
  });

  it('names the type field for an unknown type', () => {
    expect(() => registry.require('nope')).toThrow(
      expect.objectContaining({ code: 'CNV_UNKNOWN_TASK_TYPE', field: 'type' }),
    );
  });
});
