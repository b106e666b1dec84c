// A small seeded PRNG (sfc32, seeded through murmur3's finaliser) for data order and subsets.
// It lives in TypeScript so that the order of images depends only on the seed: the same on
// every device, every LibTorch build, and after a resume.

/** What a stream of random numbers is for; each gets independent numbers from the same seed. */
export const STREAM = { subset: 1, epoch: 2, rank: 3 } as const;

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Uniform doubles in [0, 1) from a seed (any safe integer) and further integer words (a
 * stream tag, an epoch): the same words, the same numbers.
 */
export function seededRandom(seed: number, ...words: number[]): () => number {
  const low = seed >>> 0;
  const high = Math.floor(seed / 4294967296) >>> 0;
  const all = [low, high, ...words.map((w) => w >>> 0)];
  const state = new Uint32Array(4);
  for (let k = 0; k < 4; k++) {
    let h = fmix32(0x9e3779b9 * (k + 1));
    for (const w of all) h = fmix32((h ^ w) + 0x7f4a7c15);
    state[k] = h;
  }
  let [a, b, c, d] = state;
  const next = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t;
  };
  for (let k = 0; k < 12; k++) next();
  // 53 random bits per double.
  return () => ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992;
}

/** Shuffles `values` in place (Fisher-Yates) with `random`; returns it. */
export function shuffleInPlace<T extends { length: number; [k: number]: number }>(values: T, random: () => number): T {
  for (let i = values.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const v = values[i];
    values[i] = values[j];
    values[j] = v;
  }
  return values;
}
