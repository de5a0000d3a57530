/** Unit tests of the pure test-support helpers (no network). */
import { describe, expect, it } from 'vitest';
import { jsonLines } from '../support/processes.js';
import { redact } from '../support/probes.js';
import { uniquePrefix } from '../support/services.js';
import { WaitTimeoutError, waitFor } from '../support/wait.js';

describe('uniquePrefix', () => {
  it('is test-<8 hex> and differs between calls', () => {
    const a = uniquePrefix();
    expect(a).toMatch(/^test-[0-9a-f]{8}$/);
    expect(uniquePrefix()).not.toBe(a);
  });
});

describe('waitFor', () => {
  it('resolves with the first truthy value', async () => {
    let calls = 0;
    await expect(waitFor(() => (++calls >= 3 ? `after ${calls}` : undefined), { intervalMs: 1 })).resolves.toBe(
      'after 3',
    );
  });

  it('treats a throwing predicate as not yet, and reports its last error on timeout', async () => {
    const error = await waitFor(
      () => {
        throw new Error('boom');
      },
      { timeoutMs: 30, intervalMs: 5, message: () => 'the thing' },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WaitTimeoutError);
    expect((error as Error).message).toBe('timed out after 30 ms waiting for the thing (last error: boom)');
  });
});

describe('jsonLines', () => {
  it('parses pino records and skips everything else', () => {
    const lines = ['{"level":40,"msg":"hi"}', 'plain text', '{"truncated":', '[1,2]', '{"msg":"two"}'];
    expect(jsonLines(lines)).toEqual([{ level: 40, msg: 'hi' }, { msg: 'two' }]);
  });
});

describe('redact', () => {
  it('hides the password of a URL', () => {
    expect(redact('amqp://guest:secret@host:5672')).toBe('amqp://guest:***@host:5672');
    expect(redact('redis://localhost:6379/0')).toBe('redis://localhost:6379/0');
  });
});
