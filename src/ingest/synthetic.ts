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
  device: string;
  country: string | null;
  load_ms: number | null;
  is_bot: boolean;
}

export interface Order {
  id: string;
  customer_id: string;
  ts: number;
  amount: number;
  items: number;
  currency: string;
  status: string;
  coupon: string | null;
}

export interface Click {
  id: number;
  campaign: string;
  ts: number;
  cost_micros: number;
  converted: boolean;
  position: number | null;
}

const DEVICES = ["desktop", "mobile", "tablet"];
const COUNTRIES = ["DE", "FR", "US", "GB", "IN", "BR"];
const CURRENCIES = ["EUR", "USD", "GBP"];
const STATUSES = ["paid", "paid", "paid", "pending", "refunded", "test"];

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

/** Picks 1..n with Zipf(s=1) weights: a few very popular, a long tail. */
function zipf(rand: () => number, n: number): () => number {
  const cumulative: number[] = [];
  let total = 0;
  for (let i = 1; i <= n; i++) cumulative.push((total += 1 / i));
  return () => {
    const x = rand() * total;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo + 1;
  };
}

/** Wraps an event maker with late event times and repeats of recent events. */
function withLateAndDuplicates<E extends { ts: number }>(rand: () => number, opts: SyntheticOptions, make: (ts: number) => E): (nowMs: number) => E {
  const late = opts.lateFraction ?? 0.05;
  const dup = opts.duplicateFraction ?? 0.02;
  const recent: E[] = [];
  return (nowMs) => {
    if (recent.length > 0 && rand() < dup) return recent[Math.floor(rand() * recent.length)]!;
    const e = make(rand() < late ? nowMs - Math.floor(120_000 + rand() * 1_680_000) : nowMs);
    recent.push(e);
    if (recent.length > 1000) recent.shift();
    return e;
  };
}

const pick = <T>(rand: () => number, items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;

export function createPageViewGenerator(opts: SyntheticOptions = {}): (nowMs: number) => PageView {
  const rand = prng(opts.seed ?? 1);
  const article = zipf(rand, opts.articles ?? 200);
  const users = opts.users ?? 5000;
  const idPrefix = opts.idPrefix ?? "ev";
  let n = 0;
  return withLateAndDuplicates(rand, opts, (ts) => ({
    id: `${idPrefix}-${++n}`,
    article_id: `a-${article()}`,
    user_id: `u-${Math.floor(rand() * users)}`,
    ts,
    device: pick(rand, DEVICES),
    country: rand() < 0.1 ? null : pick(rand, COUNTRIES),
    load_ms: rand() < 0.05 ? null : Math.round(50 + 2000 * rand() ** 3),
    is_bot: rand() < 0.03,
  }));
}

export function createOrderGenerator(opts: SyntheticOptions = {}): (nowMs: number) => Order {
  const rand = prng((opts.seed ?? 1) + 1);
  const customer = zipf(rand, opts.users ?? 5000);
  const idPrefix = opts.idPrefix ?? "ord";
  let n = 0;
  return withLateAndDuplicates(rand, opts, (ts) => ({
    id: `${idPrefix}-${++n}`,
    customer_id: `c-${customer()}`,
    ts,
    amount: Math.round(100 * (1 + 200 * rand() ** 2)) / 100,
    items: 1 + Math.floor(4 * rand() ** 2),
    currency: pick(rand, CURRENCIES),
    status: pick(rand, STATUSES),
    coupon: rand() < 0.8 ? null : `SAVE${5 * (1 + Math.floor(rand() * 4))}`,
  }));
}

export function createClickGenerator(opts: SyntheticOptions = {}): (nowMs: number) => Click {
  const rand = prng((opts.seed ?? 1) + 2);
  const campaign = zipf(rand, 40);
  let n = Math.floor(rand() * 1e9) * 1000;
  return withLateAndDuplicates(rand, opts, (ts) => ({
    id: ++n,
    campaign: `cmp-${campaign()}`,
    ts,
    cost_micros: Math.floor(10_000 + 6_000_000 * rand() ** 3),
    converted: rand() < 0.05,
    position: rand() < 0.1 ? null : 1 + Math.floor(8 * rand() ** 2),
  }));
}
