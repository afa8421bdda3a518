import { setTimeout as sleep } from 'node:timers/promises';
import { RegistryError } from '../errors';

export interface RetryPolicy {
  /** Total tries, the first included (default 5). */
  attempts?: number;
  /** Delay before the second try; doubles after each failure (default 250 ms). */
  baseDelayMs?: number;
  /** Upper bound on one delay, including a `Retry-After` (default 10 s). */
  maxDelayMs?: number;
}

const retryAfterByError = new WeakMap<Error, number>();

/** Records the wait a registry asked for (`Retry-After`) on the error it caused. */
export function setRetryAfter(error: Error, header: string | undefined): void {
  if (!header) return;
  const seconds = Number(header);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - Date.now();
  if (Number.isFinite(ms) && ms >= 0) retryAfterByError.set(error, ms);
}

/** Full-jitter exponential backoff: a random delay up to base·2^(attempt-1), capped; a Retry-After wins when given. */
export function retryDelay(attempt: number, policy: RetryPolicy, error?: Error): number {
  const max = policy.maxDelayMs ?? 10_000;
  const asked = error ? retryAfterByError.get(error) : undefined;
  if (asked !== undefined) return Math.min(asked, max);
  const ceiling = Math.min(max, (policy.baseDelayMs ?? 250) * 2 ** (attempt - 1));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

export function isRetryable(error: unknown): boolean {
  return error instanceof RegistryError && error.retryable;
}

/** Runs `task` until it succeeds, fails with an error that is not retryable, or runs out of attempts. */
export async function withRetry<T>(task: (attempt: number) => Promise<T>, policy: RetryPolicy, onRetry?: (error: Error, delayMs: number, attempt: number) => void): Promise<T> {
  const attempts = Math.max(1, policy.attempts ?? 5);
  for (let attempt = 1; ; attempt++) {
    try {
      return await task(attempt);
    } catch (error) {
      if (attempt >= attempts || !isRetryable(error)) throw error;
      const delay = retryDelay(attempt, policy, error as Error);
      onRetry?.(error as Error, delay, attempt);
      await sleep(delay);
    }
  }
}
