/** Bounded waiting, for start-up and shutdown paths that must never hang. */

/**
 * Resolves when `promise` settles (true) or `ms` pass (false), whichever is
 * first; never rejects, and leaves no timer behind.
 */
export async function settleWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const settled = promise.then(
    () => true as const,
    () => true as const,
  );
  try {
    return await Promise.race([settled, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
