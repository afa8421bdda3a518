import { createCipheriv, createHash } from 'node:crypto';

/**
 * Seeded, reproducible bytes: the AES-256-CTR keystream of a key derived from the seed and a label.
 * Incompressible and fast (GB/s), so big layers cost little to generate.
 */
export function randomStream(seed, label) {
  const key = createHash('sha256').update(`${seed}\0${label}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(1 << 20);
  return { next: (size) => (size <= zeros.length ? cipher.update(zeros.subarray(0, size)) : cipher.update(Buffer.alloc(size))) };
}

/** A small seeded PRNG (mulberry32 over a sha256-derived state) for choices: sizes, names, graph edges. */
export function prng(seed, label = '') {
  let state = createHash('sha256').update(`${seed}\0${label}`).digest().readUInt32LE(0);
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: (items) => items[Math.floor(next() * items.length)],
    /** Zipf-like: small indexes far more often, as words in real code. */
    skewed: (count) => Math.min(count - 1, Math.floor(count * next() ** 3)),
  };
}
