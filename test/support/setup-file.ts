/**
 * Setup file of the `integration` project, run in every test file: after the
 * file's own hooks, stop any role it started and left running.
 */
import { afterAll } from 'vitest';
import { stopAllRoles } from './processes.js';

afterAll(async () => {
  await stopAllRoles();
});
