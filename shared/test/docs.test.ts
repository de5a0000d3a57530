/** The README documents the contract: every error code and every configuration variable. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Errors } from '../src/errors.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const configSource = readFileSync(new URL('../src/config.ts', import.meta.url), 'utf8');

describe('README', () => {
  it.each(Object.values(Errors).map((E) => new E().code))('documents error code %s', (code) => {
    expect(readme).toContain(`\`${code}\``);
  });

  const variables = [...configSource.matchAll(/^ {4}([A-Z][A-Z_]+): \{ type:/gm)].map((m) => m[1]!);

  it('reads the configuration schema', () => {
    expect(variables).toContain('AMQP_URL');
  });

  it.each(variables)('documents configuration variable %s', (name) => {
    expect(readme).toContain(`| \`${name}\` |`);
  });
});
