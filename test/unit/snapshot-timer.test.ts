/**
 * When speed actors write their periodic snapshots (src/actors/snapshot_timer.ts): each partition
 * in a slot of its own on the wall clock, so the actors of a node never encode together.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { msToSnapshotSlot } from "../../src/actors/snapshot_timer.js";

test("each partition's snapshots fall in a slot of its own, once per period, whenever asked", () => {
  const intervalMs = 2_000;
  const partitions = 8;
  for (const startMs of [0, 1, 1_999, 2_000, 1_733_300_000_123, 1_733_300_001_999]) {
    const fires = new Map<number, number[]>();
    for (let p = 0; p < partitions; p++) {
      // Three periods of fires from `startMs`, as the timer arms them.
      let now = startMs;
      const at: number[] = [];
      for (let i = 0; i < 3; i++) {
        const wait = msToSnapshotSlot(now, intervalMs, p, partitions);
        assert.ok(wait > 0 && wait <= intervalMs, `partition ${p} at ${now}: wait ${wait} ms`);
        now += wait;
        at.push(now);
      }
      assert.deepEqual([at[1]! - at[0]!, at[2]! - at[1]!], [intervalMs, intervalMs], `partition ${p}: once per period`);
      assert.equal(at[0]! % intervalMs, (p * intervalMs) / partitions, `partition ${p}: its slot`);
      fires.set(p, at);
    }
    // No two partitions ever fire within a slot's width of each other.
    const all = [...fires.values()].flat().sort((a, b) => a - b);
    for (let i = 1; i < all.length; i++) assert.ok(all[i]! - all[i - 1]! >= intervalMs / partitions, `fires ${all[i - 1]} and ${all[i]} from ${startMs}`);
  }
});

test("a partition beyond the partition count takes the slot of its remainder; one partition fires once per period", () => {
  assert.equal(msToSnapshotSlot(0, 1_000, 9, 8), msToSnapshotSlot(0, 1_000, 1, 8));
  assert.equal(msToSnapshotSlot(5_000, 1_000, 0, 1), 1_000);
  assert.equal(msToSnapshotSlot(5_001, 1_000, 0, 1), 999);
});
