import { describe, expect, it } from 'vitest';
import { RegistryError } from '../errors';
import { Limiter } from './limiter';
import { retryDelay, setRetryAfter, withRetry } from './retry';

const serverError = () => new RegistryError('r.io', 'a', 'blob get', 503, 'UNAVAILABLE');

describe('withRetry', () => {
  it('retries retryable errors up to the attempt limit, then throws the last', async () => {
    let calls = 0;
    await expect(withRetry(async () => { calls++; throw serverError(); }, { attempts: 3, baseDelayMs: 1 })).rejects.toThrow('HTTP 503');
    expect(calls).toBe(3);
  });

  it('stops at once on an error that is not retryable', async () => {
    let calls = 0;
    const denied = new RegistryError('r.io', 'a', 'blob get', 403, 'DENIED');
    await expect(withRetry(async () => { calls++; throw denied; }, { attempts: 5, baseDelayMs: 1 })).rejects.toBe(denied);
    expect(calls).toBe(1);
  });

  it('returns the first success', async () => {
    let calls = 0;
    const retries: number[] = [];
    const value = await withRetry(async (attempt) => { calls++; if (attempt < 3) throw serverError(); return 'ok'; }, { baseDelayMs: 1 }, (_e, _d, a) => retries.push(a));
    expect(value).toBe('ok');
    expect(calls).toBe(3);
    expect(retries).toEqual([1, 2]);
  });

  it('backs off exponentially with jitter, capped, and honours Retry-After', () => {
    for (let i = 0; i < 50; i++) {
      const d1 = retryDelay(1, { baseDelayMs: 100 });
      const d3 = retryDelay(3, { baseDelayMs: 100 });
      expect(d1).toBeGreaterThanOrEqual(50);
      expect(d1).toBeLessThanOrEqual(100);
      expect(d3).toBeGreaterThanOrEqual(200);
      expect(d3).toBeLessThanOrEqual(400);
      expect(retryDelay(20, { baseDelayMs: 100, maxDelayMs: 1000 })).toBeLessThanOrEqual(1000);
    }
    const limited = new RegistryError('r.io', 'a', 'blob get', 429, 'TOOMANYREQUESTS');
    setRetryAfter(limited, '2');
    expect(retryDelay(1, { baseDelayMs: 1 }, limited)).toBe(2000);
    expect(retryDelay(1, { baseDelayMs: 1, maxDelayMs: 500 }, limited)).toBe(500);
  });
});

describe('Limiter', () => {
  it('never lets more than the limit run at once', async () => {
    const limiter = new Limiter(2);
    let running = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        const release = await limiter.acquire();
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 5));
        running--;
        release();
        release(); // a second release is a no-op
      }),
    );
    expect(peak).toBe(2);
    expect(limiter.inUse).toBe(0);
  });
});
