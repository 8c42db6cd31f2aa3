// Two interleaved spirals, generated deterministically: the classification
// data of the deep sigmoid and deep residual examples.

/** A small seeded generator (mulberry32): the same points on every machine. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `n` points (n/2 per class) on two spirals of `turns` turns, the second the
 * first turned by half a circle, with Gaussian-ish jitter of size `noise`.
 * Classes alternate, so any run of examples is balanced. x is [n, 2] flat, y is [n].
 */
export function twoSpirals(n: number, turns = 1.25, noise = 0.04, seed = 7): { x: number[]; y: number[] } {
  const next = rng(seed);
  // the sum of three uniforms: a cheap bell-shaped jitter
  const jitter = () => (next() + next() + next() - 1.5) * noise;
  const x: number[] = [];
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const label = i % 2;
    const s = Math.floor(i / 2) / (n / 2); // position along the spiral, 0..1
    const angle = s * turns * 2 * Math.PI + label * Math.PI;
    const radius = 0.15 + 0.85 * s;
    x.push(radius * Math.cos(angle) + jitter(), radius * Math.sin(angle) + jitter());
    y.push(label);
  }
  return { x, y };
}
