/**
 * The sketches of src/core/sketch.ts against real chDB. ClickHouse SQL must
 * build exactly the states TypeScript builds: the hash and the canonical
 * strings, the HLL register of every possible low-bit pattern, the quantile
 * bucket of every kind of double, and whole states (hllSqlState,
 * quantileSqlState) over random rows, including a batch/speed split at a random
 * cut and groups with nothing to count. Values reach the tables the way the
 * archiver sends them, as a JSONEachRow insert.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openClickHouse, queryRows, type ChHandle } from "../../src/ch/client.js";
import {
  canonicalString,
  hllAdd,
  hllDecode,
  hllEncode,
  hllMerge,
  hllRegister,
  hllSqlRegister,
  hllSqlState,
  murmur3_32,
  quantileAdd,
  quantileBucket,
  quantileDecode,
  quantileEncode,
  quantileMerge,
  quantileSqlBucket,
  quantileSqlState,
  type HllState,
  type QuantileState,
} from "../../src/core/sketch.js";
import { prng, type Prng } from "../unit/prng.js";

// chDB allows one data directory per process: the tests of this file share one.
let dir = "";
let ch: ChHandle;
const DB = `sketch_sql_${process.pid}`;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), "lambda-sketch-sql-"));
  ch = await openClickHouse({ url: "", username: "default", password: "", chdbPath: join(dir, "chdb") });
  await ch.client.command({ query: `CREATE DATABASE ${DB}` });
});
after(async () => {
  try {
    await ch?.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

async function createTable(name: string, columns: string, rows: object[]): Promise<string> {
  const table = `${DB}.${name}`;
  await ch.client.command({ query: `CREATE TABLE ${table} (${columns}) ENGINE = MergeTree ORDER BY tuple()` });
  await ch.client.insert({ table, values: rows, format: "JSONEachRow" });
  return table;
}

/** Characters of every UTF-8 length (1 to 4 bytes), and JSON and SQL specials. */
const ALPHABETS = ["abcxyz019", "\u0000\n\t\"'\\{}", "éßøñü", "日本語中文한국", "😀🎉𝄞", "a😀é日"];
function randomText(rnd: Prng, length: number): string {
  const chars = [...rnd.pick(ALPHABETS)];
  return Array.from({ length }, () => rnd.pick(chars)).join("");
}

test("murmurHash3_32(s) equals murmur3_32 for every UTF-8 byte length 0..20 and tail; toString equals canonicalString", async () => {
  const rnd = prng(1);
  const texts = ["", "hello", "The quick brown fox jumps over the lazy dog"];
  for (let len = 0; len <= 20; len++) for (let k = 0; k < 60; k++) texts.push(randomText(rnd, len));
  const byteLengths = new Set(texts.map((t) => Buffer.byteLength(t)));
  for (let n = 0; n <= 20; n++) assert.ok(byteLengths.has(n), `fixture: a text of ${n} UTF-8 bytes`);
  const ints = [0, 1, -1, 42, -42, 2 ** 31, -(2 ** 31) - 1, 2 ** 32, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER];
  for (let k = 0; k < 300; k++) ints.push((rnd.chance(0.5) ? -1 : 1) * Math.floor(10 ** (rnd.next() * 15.9)));
  const rows = texts.map((s, i) => ({ i, s, n: ints[i % ints.length]!, b: i % 2 === 0 }));
  const table = await createTable("texts", "i UInt32, s String, n Int64, b Bool", rows);
  const got = await queryRows<{ i: number; s: string; h: number; ts: string; tn: string; tb: string }>(
    ch.client,
    `SELECT i, s, murmurHash3_32(s) AS h, toString(s) AS ts, toString(n) AS tn, toString(b) AS tb FROM ${table} ORDER BY i`,
  );
  assert.equal(got.length, rows.length);
  for (const r of got) {
    const want = rows[r.i]!;
    assert.equal(r.s, want.s, `row ${r.i}: the text survives the insert`);
    assert.equal(r.h, murmur3_32(want.s), `row ${r.i}: hash of ${JSON.stringify(want.s)}`);
    assert.equal(r.ts, canonicalString(want.s), `row ${r.i}: String`);
    assert.equal(r.tn, canonicalString(want.n), `row ${r.i}: Int64 ${want.n}`);
    assert.equal(r.tb, canonicalString(want.b), `row ${r.i}: Bool ${want.b}`);
  }
});

test("the SQL register (index, rank) equals hllRegister for all 2^20 low-bit patterns under several index bits", async () => {
  const LOWS = 1 << 20;
  for (const top of [0, 0xabc00000, 0xfff00000]) {
    const reg = hllSqlRegister(`toUInt32(bitOr(n, ${top}))`);
    const [row] = await queryRows<{ idx: number[]; rank: number[] }>(
      ch.client,
      `SELECT arrayMap(n -> ${reg.index}, range(${LOWS})) AS idx, arrayMap(n -> ${reg.rank}, range(${LOWS})) AS rank`,
    );
    assert.ok(row && row.idx.length === LOWS && row.rank.length === LOWS);
    for (let low = 0; low < LOWS; low++) {
      const want = hllRegister((top | low) >>> 0);
      if (row.idx[low] !== want.index || row.rank[low] !== want.rank) {
        assert.fail(`hash 0x${((top | low) >>> 0).toString(16)}: SQL (${row.idx[low]}, ${row.rank[low]}), TS (${want.index}, ${want.rank})`);
      }
    }
  }
});

/**
 * Quantile counts are UInt64. chDB writes them as JSON numbers; a server quotes
 * 64-bit integers by default (output_format_json_quote_64bit_integers).
 */
type Counts = (number | string)[];

const bitsView = new DataView(new ArrayBuffer(8));
const bitsOf = (x: number): string => (bitsView.setFloat64(0, x), bitsView.getBigUint64(0).toString());

/** Doubles of every kind: random bit patterns (normal and subnormal, both signs), integers, extremes and zeros. */
function randomDoubles(rnd: Prng, n: number): number[] {
  const xs = [0, 1, -1, 5e-324, -5e-324, 2 ** -1022, -(2 ** -1022), 2 ** -1029, Number.MAX_VALUE, -Number.MAX_VALUE, 2 ** 53, 0.1, -0.1];
  while (xs.length < n) {
    bitsView.setUint32(0, rnd.int(0, 2 ** 32 - 1));
    bitsView.setUint32(4, rnd.int(0, 2 ** 32 - 1));
    const pattern = bitsView.getFloat64(0);
    const x = rnd.pick([pattern, pattern, rnd.int(-1e9, 1e9), (rnd.next() - 0.5) * 1e6, 5e-324 * rnd.int(1, 2 ** 32), 10 ** (rnd.next() * 600 - 300)]);
    if (Number.isFinite(x)) xs.push(x);
  }
  return xs;
}

test("the SQL bucket equals quantileBucket for random doubles (normal, subnormal, huge, negative, integers) and for -0", async () => {
  const xs = randomDoubles(prng(2), 20_000);
  const table = await createTable("doubles", "i UInt32, x Float64", xs.map((x, i) => ({ i, x })));
  const got = await queryRows<{ i: number; bits: string; b: number }>(
    ch.client,
    `SELECT i, toString(reinterpretAsUInt64(x)) AS bits, ${quantileSqlBucket("x")} AS b FROM ${table} ORDER BY i`,
  );
  assert.equal(got.length, xs.length);
  for (const r of got) {
    const x = xs[r.i]!;
    assert.equal(r.bits, bitsOf(x), `row ${r.i}: ${x} is stored with the same bits`);
    assert.equal(r.b, quantileBucket(x), `row ${r.i}: bucket of ${x}`);
  }
  // JSON has no -0, so it is made in SQL; the first column proves the sign bit is set.
  const [zero] = await queryRows<{ neg: string; b: number }>(
    ch.client,
    `SELECT toString(reinterpretAsUInt64(x)) AS neg, ${quantileSqlBucket("x")} AS b FROM (SELECT -toFloat64(0) AS x)`,
  );
  assert.equal(zero?.neg, (1n << 63n).toString(), "the input is -0");
  assert.equal(zero?.b, quantileBucket(-0));
  assert.equal(quantileBucket(-0), 0);
});

interface EventRow {
  seq: number;
  g: number;
  s: string;
  n: number;
  b: boolean;
  x: number;
  /** Counted: the condition the states are built under. */
  c: boolean;
}

type SqlStates = { g: number; hs: [number[], number[]]; hn: [number[], number[]]; hb: [number[], number[]]; qx: [number[], Counts]; qn: [number[], Counts] };

const hllOfSql = ([idx, rank]: [number[], number[]]): HllState => hllDecode({ idx, rank });
const quantilesOfSql = ([bucket, count]: [number[], Counts]): QuantileState => quantileDecode({ bucket, count: count.map(Number) });

interface TsStates {
  hs: HllState;
  hn: HllState;
  hb: HllState;
  qx: QuantileState;
  qn: QuantileState;
}
const emptyStates = (): TsStates => ({ hs: new Map(), hn: new Map(), hb: new Map(), qx: new Map(), qn: new Map() });

/** TS states per group, over the rows `keep` accepts (by default the counted ones). */
function tsStates(rows: readonly EventRow[], keep: (r: EventRow) => boolean = (r) => r.c) {
  const groups = new Map<number, TsStates>();
  for (const r of rows) {
    if (!keep(r)) continue;
    let st = groups.get(r.g);
    if (!st) groups.set(r.g, (st = emptyStates()));
    hllAdd(st.hs, canonicalString(r.s));
    hllAdd(st.hn, canonicalString(r.n));
    hllAdd(st.hb, canonicalString(r.b));
    quantileAdd(st.qx, r.x);
    quantileAdd(st.qn, r.n);
  }
  return groups;
}

/**
 * The five states per group over the rows `where` keeps, counting the rows where `cond` holds
 * (null: every row): the two levels a batch view's query uses.
 */
function sqlStates(table: string, where: string, groupBy = "g", cond: string | null = "c"): Promise<SqlStates[]> {
  const sketches = { hs: hllSqlState("s", cond), hn: hllSqlState("n", cond), hb: hllSqlState("b", cond), qx: quantileSqlState("x", cond), qn: quantileSqlState("n", cond) };
  const inner = Object.entries(sketches).map(([name, st]) => `, ${st.aggregate} AS _${name}`);
  const outer = Object.entries(sketches).map(([name, st]) => `, (${st.columns(`_${name}`).join(", ")}) AS ${name}`);
  const by = groupBy ? ` GROUP BY ${groupBy}` : "";
  return queryRows<SqlStates>(ch.client, `SELECT ${groupBy || "0"} AS g${outer.join("")} FROM (SELECT ${groupBy || "0"} AS g${inner.join("")} FROM ${table} WHERE ${where}${by}) ORDER BY g`);
}

test("SQL states equal the TS states exactly, also for a group with nothing counted, and merge(batch below a cut, speed above it) equals both", async () => {
  const rnd = prng(3);
  const rows: EventRow[] = [];
  // Group sizes from tiny (sparse HLL) to large (every register set); the last group has no counted row.
  const sizes = [1, 7, 300, 5000, 60_000, 40];
  const uncounted = sizes.length - 1;
  sizes.forEach((size, g) => {
    for (let k = 0; k < size; k++) {
      const s = rnd.chance(0.2) ? randomText(rnd, rnd.int(0, 12)) : `user-${rnd.int(0, size)}`;
      rows.push({ seq: rows.length, g, s, n: rnd.int(-1e12, 1e12), b: rnd.chance(0.3), x: randomDoubles(rnd, 14).at(-1)!, c: g !== uncounted && (size === 1 || rnd.chance(0.9)) });
    }
  });
  const table = await createTable("events", "seq UInt32, g UInt8, s String, n Int64, b Bool, x Float64, c Bool", rows);
  const cut = rnd.int(1, rows.length - 1);
  const all = tsStates(rows);
  const speed = tsStates(rows, (r) => r.c && r.seq >= cut);
  const [sqlAll, batch] = [await sqlStates(table, "1"), await sqlStates(table, `seq < ${cut}`)];
  assert.deepEqual(
    sqlAll.map((r) => r.g),
    [...sizes.keys()],
    "one row per group, the group with nothing counted included",
  );
  for (const r of sqlAll) {
    const want = all.get(r.g) ?? emptyStates();
    assert.deepEqual([r.hs[0], r.hs[1]], [hllEncode(want.hs).idx, hllEncode(want.hs).rank], `group ${r.g}: HLL of String`);
    assert.deepEqual(hllEncode(hllOfSql(r.hn)), hllEncode(want.hn), `group ${r.g}: HLL of Int64`);
    assert.deepEqual(hllEncode(hllOfSql(r.hb)), hllEncode(want.hb), `group ${r.g}: HLL of Bool`);
    assert.deepEqual([r.qx[0], r.qx[1].map(Number)], [quantileEncode(want.qx).bucket, quantileEncode(want.qx).count], `group ${r.g}: quantiles of Float64`);
    assert.deepEqual(quantileEncode(quantilesOfSql(r.qn)), quantileEncode(want.qn), `group ${r.g}: quantiles of Int64`);
  }
  const none = sqlAll.find((r) => r.g === uncounted)!;
  assert.deepEqual([none.hs, none.hn, none.hb, none.qx, none.qn], [[[], []], [[], []], [[], []], [[], []], [[], []]], "nothing counted: empty arrays");
  assert.ok(all.get(sizes.length - 2)!.hs.size > 4000, "fixture: the large group sets nearly every register");
  for (const g of sizes.keys()) {
    const b = batch.find((r) => r.g === g);
    const hs = b ? hllOfSql(b.hs) : new Map<number, number>();
    const qx = b ? quantilesOfSql(b.qx) : new Map<number, number>();
    const sp = speed.get(g);
    if (sp) {
      hllMerge(hs, sp.hs);
      quantileMerge(qx, sp.qx);
    }
    const whole = all.get(g) ?? emptyStates();
    assert.deepEqual(hllEncode(hs), hllEncode(whole.hs), `group ${g}: merged HLL at cut ${cut}`);
    assert.deepEqual(quantileEncode(qx), quantileEncode(whole.qx), `group ${g}: merged quantiles at cut ${cut}`);
  }
  // No condition: every row counts.
  const everyRow = tsStates(rows, () => true);
  for (const r of await sqlStates(table, "1", "g", null)) {
    const want = everyRow.get(r.g)!;
    assert.deepEqual(hllEncode(hllOfSql(r.hs)), hllEncode(want.hs), `group ${r.g}, no condition: HLL of String`);
    assert.deepEqual(quantileEncode(quantilesOfSql(r.qx)), quantileEncode(want.qx), `group ${r.g}, no condition: quantiles of Float64`);
  }
  // No rows at all, no GROUP BY: one row of empty arrays, which decode to the empty state.
  const [empty] = await sqlStates(table, "0", "");
  assert.deepEqual([...hllOfSql(empty!.hs)], []);
  assert.deepEqual([...quantilesOfSql(empty!.qx)], []);
});
