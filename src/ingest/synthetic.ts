/**
 * A synthetic page-view stream for the local cluster and benchmarks: skewed
 * article popularity (Zipf-like), some late events (event time minutes in the
 * past) and some duplicates (a producer retrying an event it already sent).
 * Deterministic for a given seed.
 */

export interface SyntheticOptions {
  /** Distinct articles. @default 200 */
  articles?: number;
  /** Distinct users. @default 5000 */
  users?: number;
  /** Share of events whose time lies 2–30 minutes in the past. @default 0.05 */
  lateFraction?: number;
  /** Share of events that repeat an earlier event id. @default 0.02 */
  duplicateFraction?: number;
  /** PRNG seed. @default 1 */
  seed?: number;
  /** Prefix of event ids. @default "ev" */
  idPrefix?: string;
}

export interface PageView {
  id: string;
  article_id: string;
  user_id: string;
  ts: number;
}

/** mulberry32: a small, fast, seedable PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function createPageViewGenerator(opts: SyntheticOptions = {}): (nowMs: number) => PageView {
  const articles = opts.articles ?? 200;
  const users = opts.users ?? 5000;
  const late = opts.lateFraction ?? 0.05;
  const dup = opts.duplicateFraction ?? 0.02;
  const idPrefix = opts.idPrefix ?? "ev";
  const rand = prng(opts.seed ?? 1);
  // Zipf(s=1) over articles via the inverse of the cumulative weights.
  const cumulative: number[] = [];
  let total = 0;
  for (let i = 1; i <= articles; i++) cumulative.push((total += 1 / i));
  const pickArticle = () => {
    const x = rand() * total;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return `a-${lo + 1}`;
  };
  const recent: PageView[] = [];
  let n = 0;
  return (nowMs) => {
    if (recent.length > 0 && rand() < dup) return recent[Math.floor(rand() * recent.length)]!;
    const ts = rand() < late ? nowMs - Math.floor(120_000 + rand() * 1_680_000) : nowMs;
    const e: PageView = { id: `${idPrefix}-${++n}`, article_id: pickArticle(), user_id: `u-${Math.floor(rand() * users)}`, ts };
    recent.push(e);
    if (recent.length > 1000) recent.shift();
    return e;
  };
}
