/**
 * The msgpack codec (src/nats/codec.ts): a large one-off value encoded with `encodeLarge`
 * round-trips like `encode` and does not leave msgpackr's buffer at its size. msgpackr keeps one
 * buffer for every later encode and grows it to several times the largest value written; a
 * speed actor's snapshot through plain `encode` would keep that much for the life of the process.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { decode, encode, encodeLarge } from "../../src/nats/codec.js";

const MIB = 1024 * 1024;
/** A value of about 4 MiB, as a large snapshot is. */
const large = () => ({ format: 5, ids: new Uint8Array(4 * MIB).fill(7), segments: [{ n: 3 }] });

test("encodeLarge round-trips like encode", () => {
  const v = large();
  assert.deepEqual(decode(encodeLarge(v)), decode(encode(v)));
  assert.deepEqual(encodeLarge(v), encode(v));
});

test("a large value through encode leaves a large buffer behind (what encodeLarge avoids)", () => {
  encode(large());
  assert.ok(encode({ k: "e" }).buffer.byteLength > 4 * MIB, "msgpackr no longer keeps its grown buffer: encodeLarge may be unneeded");
});

test("after encodeLarge, small values are written into a small buffer again", () => {
  encode(large());
  const bytes = encodeLarge(large());
  assert.ok(encode({ k: "e" }).buffer.byteLength < MIB, "the shared buffer kept the size of the large value");
  assert.equal(decode<{ ids: Uint8Array }>(bytes).ids.length, 4 * MIB, "the large value's bytes were overwritten");
});

test("after encodeLarge, every kind of value still encodes (long and non-ASCII strings, nested lists)", () => {
  encodeLarge(large());
  const value = { s: "x".repeat(300), u: "größe ✓ ".repeat(50), list: [[1, "a"], [2.5, "b".repeat(70)]] };
  assert.deepEqual(decode(encode(value)), value);
  encodeLarge(large());
  assert.deepEqual(decode(encodeLarge(value)), value);
});
