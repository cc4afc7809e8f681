/** The bench's curves (bench/curve.ts): line and exponent fits, slopes per repetition; and their SVG chart (bench/svg.ts). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { curvePoint, fitLine, growthExponent, slopesPerRepetition, type Curve } from "../../bench/curve.js";
import { curveAxis, renderCurvesSvg } from "../../bench/svg.js";
import { parseOptions, DEFAULT_FIGURES, LARGE_SCALE_BATCH_ROWS } from "../../bench/options.js";

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-9, `${what}: ${a} vs ${b}`);

test("fitLine recovers a line exactly and the least-squares line through noise", () => {
  const line = fitLine([1, 2, 5, 20].map((x) => ({ x, y: 0.3 + 2 * x })));
  close(line.slope, 2, "slope");
  close(line.intercept, 0.3, "intercept");
  // (0,0), (1,1), (2,1): slope 0.5, intercept 1/6, by hand.
  const ls = fitLine([{ x: 0, y: 0 }, { x: 1, y: 1 }, { x: 2, y: 1 }]);
  close(ls.slope, 0.5, "least-squares slope");
  close(ls.intercept, 1 / 6, "least-squares intercept");
  assert.throws(() => fitLine([{ x: 3, y: 1 }, { x: 3, y: 2 }]), /two distinct x values/);
  assert.throws(() => fitLine([{ x: 3, y: 1 }]), /two distinct x values/);
});

test("growthExponent reads linear, flat and quadratic growth, and refuses values it cannot log", () => {
  const xs = [1e6, 5e6, 2e7];
  close(growthExponent(xs.map((x) => ({ x, y: 3e-6 * x }))), 1, "linear");
  close(growthExponent(xs.map((x) => ({ x, y: 7 }))), 0, "flat");
  close(growthExponent(xs.map((x) => ({ x, y: x * x }))), 2, "quadratic");
  assert.throws(() => growthExponent([{ x: 1, y: 0 }, { x: 2, y: 1 }]), /positive x and y/);
});

test("slopesPerRepetition fits one line per repetition across the sizes", () => {
  // Repetition 0 grows 1 s per unit, repetition 1 grows 3 s per unit.
  const points = [curvePoint(1, [1, 3]), curvePoint(2, [2, 6]), curvePoint(4, [4, 12])];
  const slopes = slopesPerRepetition(points);
  assert.equal(slopes.length, 2);
  close(slopes[0]!, 1, "repetition 0");
  close(slopes[1]!, 3, "repetition 1");
  assert.throws(() => slopesPerRepetition([curvePoint(1, [1, 2]), curvePoint(2, [2])]), /different repetition counts/);
  assert.deepEqual(curvePoint(5, [3, 1, 2]), { x: 5, y: 2, min: 1, max: 3, samples: [3, 1, 2] });
});

test("curveAxis is logarithmic over a wide positive range and linear from 0 otherwise", () => {
  const log = curveAxis([1e6, 5e6, 2e7, 5e7]);
  assert.equal(log.log, true);
  close(log.at(1e6), 0, "low end");
  close(log.at(5e7), 1, "high end");
  assert.deepEqual(log.ticks, [1e6, 2e6, 5e6, 1e7, 2e7, 5e7]);
  const lin = curveAxis([4, 8, 16, 32]);
  assert.equal(lin.log, false);
  close(lin.at(0), 0, "linear axis starts at 0");
  assert.ok(lin.ticks[lin.ticks.length - 1]! >= 32, "the last tick covers the largest value");
  assert.ok(lin.ticks.length >= 3 && lin.ticks.length <= 9, `about five ticks, got ${lin.ticks}`);
});

test("renderCurvesSvg draws one panel per curve, a line per series, the range of each point, and escapes labels", () => {
  const curve: Curve = {
    figure: "scale",
    title: "batch run time vs master rows",
    xLabel: "master rows",
    yUnit: "s",
    series: [
      { label: "run <product>", role: "product", points: [curvePoint(1e6, [1, 1.2]), curvePoint(5e6, [4, 5]), curvePoint(2e7, [15, 16])] },
      { label: "exact query & dedup", role: "baseline", points: [curvePoint(1e6, [0.5, 0.6]), curvePoint(5e6, [2, 3]), curvePoint(2e7, [8, 9])] },
    ],
  };
  const svg = renderCurvesSvg("title", [curve, { ...curve, title: "second" }]);
  assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.ok(svg.trimEnd().endsWith("</svg>"));
  assert.equal(svg.match(/<polyline /g)?.length, 4, "two series in each of two panels");
  assert.equal(svg.match(/<circle /g)?.length, 12, "a marker per point");
  assert.equal(svg.match(/stroke-dasharray="5 3"/g)?.length, 4, "baselines dashed, in the plot and the legend");
  assert.ok(svg.includes("run &lt;product&gt;") && svg.includes("exact query &amp; dedup"), "labels escaped");
  assert.ok(!svg.includes("<product>"));
  assert.ok(svg.includes("master rows (log)"), "a wide x range is drawn on a log axis");
  assert.equal(svg.match(/>second</g)?.length, 1);
});

test("the scale figure runs only when named, and --large adds 50M rows to its batch curve", () => {
  const plain = parseOptions([], "out");
  assert.ok(plain !== "help");
  assert.ok(!plain.only.includes("scale"), "a run without --only leaves scale out");
  assert.deepEqual(plain.only, DEFAULT_FIGURES);
  const scale = parseOptions(["--only", "scale"], "out");
  assert.ok(scale !== "help");
  assert.deepEqual(scale.only, ["scale"]);
  assert.deepEqual(scale.sizes.scale.batchRows, [1e6, 5e6, 2e7]);
  const large = parseOptions(["--only", "scale", "--large"], "out");
  assert.ok(large !== "help");
  assert.equal(large.sizes.scale.batchRows[large.sizes.scale.batchRows.length - 1], LARGE_SCALE_BATCH_ROWS);
  const quick = parseOptions(["--quick", "--only", "scale"], "out");
  assert.ok(quick !== "help");
  assert.ok(quick.sizes.scale.batchRows.every((n) => n <= 1e6), "quick sizes stay small");
});
