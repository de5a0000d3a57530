/**
 * Pure integer math behind the `compute` task: no I/O and no context, so it
 * can be unit tested and run in a worker thread as is. Type-only imports:
 * a pool thread that loads this module must not load all of
 * @conveyor/shared (hundreds of milliseconds per thread start).
 */
import type { ComputeOperation } from '@conveyor/shared';

/** A safe integer as a JS number; anything larger as its decimal string, because JSON numbers lose precision past 2^53. */
export type IntegerResult = number | string;

export type ComputeResult = IntegerResult | boolean;

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * The largest `n` for which 0+1+…+(n-1) = n(n-1)/2 is still a safe integer
 * (2^27·(2^27-1)/2 = 2^53 - 2^26). Every partial sum of the loop is at most the
 * final one, so plain number addition is exact up to here.
 */
export const SUM_RANGE_EXACT_MAX = 2 ** 27;

export function toIntegerResult(value: bigint): IntegerResult {
  return value <= MAX_SAFE && value >= -MAX_SAFE ? Number(value) : value.toString();
}

function assertInput(operation: ComputeOperation, n: number, max: number): void {
  if (!Number.isSafeInteger(n) || n < 0 || n > max) {
    throw new RangeError(`${operation} input must be an integer between 0 and ${max}, got ${n}`);
  }
}

/**
 * 0 + 1 + … + (n-1), by looping on purpose: the task exists to burn CPU, not
 * to know Gauss's formula.
 */
export function sumRange(n: number): number {
  assertInput('sum_range', n, SUM_RANGE_EXACT_MAX);
  let total = 0;
  for (let i = 0; i < n; i++) total += i;
  return total;
}

export function factorial(n: number): IntegerResult {
  assertInput('factorial', n, Number.MAX_SAFE_INTEGER);
  const last = BigInt(n);
  let product = 1n;
  for (let i = 2n; i <= last; i++) product *= i;
  return toIntegerResult(product);
}

/** fib(0) = 0, fib(1) = 1, fib(n) = fib(n-1) + fib(n-2). */
export function fibonacci(n: number): IntegerResult {
  assertInput('fibonacci', n, Number.MAX_SAFE_INTEGER);
  let previous = 0n;
  let current = 1n;
  for (let i = 0; i < n; i++) [previous, current] = [current, previous + current];
  return toIntegerResult(previous);
}

/**
 * Trial division by 2, 3 and then 6k±1, up to √n.
 *
 * Beyond 2^31 V8 computes `%` with a slow fmod call, which made the largest
 * safe primes take most of a second; dividing and multiplying back is about
 * ten times faster and still exact for any safe n. If d divides n, n/d is an
 * exact integer q and q·d = n. If not, no integer q has q·d = n; a product
 * below 2^53 is computed exactly, and one at or above 2^53 rounds to at least
 * 2^53 > n, so it cannot compare equal either. Likewise `i * i <= n` cannot
 * misjudge the bound.
 */
export function isPrime(n: number): boolean {
  assertInput('is_prime', n, Number.MAX_SAFE_INTEGER);
  if (n < 2) return false;
  if (n < 4) return true;
  if (n % 2 === 0 || n % 3 === 0) return false;
  for (let i = 5; i * i <= n; i += 6) {
    if (divides(i, n) || divides(i + 2, n)) return false;
  }
  return true;
}

function divides(d: number, n: number): boolean {
  return Math.floor(n / d) * d === n;
}

/**
 * Runs `operation` on `input`, refusing inputs above `limit` (the caller
 * passes COMPUTE_LIMITS[operation]). The worker validated the kwargs
 * already; checking again keeps a caller outside the worker (a thread pool,
 * a test) from starting an unbounded loop.
 */
export function runCompute(operation: ComputeOperation, input: number, limit: number): ComputeResult {
  assertInput(operation, input, limit);
  switch (operation) {
    case 'sum_range':
      return sumRange(input);
    case 'factorial':
      return factorial(input);
    case 'fibonacci':
      return fibonacci(input);
    case 'is_prime':
      return isPrime(input);
    default: {
      const unknown: never = operation;
      throw new RangeError(`Unknown compute operation ${String(unknown)}`);
    }
  }
}
