/**
 * The bounded wait each infrastructure plugin allows its client at start-up.
 * Waiting a little means the first requests after a normal start do not get a
 * 503 while connections are still being made; bounding it means an outage
 * does not stop the api from starting and reporting it on /ready.
 */
export const STARTUP_WAIT_MS = 2000;
