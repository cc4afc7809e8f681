import { test } from "node:test";
import assert from "node:assert/strict";
import { buildTimelineSvg, escapeXml, timelineDomain, type TimelineData } from "../../src/cli/timeline_svg.js";

/** An element of a parsed document: its name, attributes, text (decoded, own text only) and parent. */
interface XmlElement {
  readonly name: string;
  readonly attrs: Readonly<Record<string, string>>;
  text: string;
  readonly parent: XmlElement | undefined;
}

const ENTITIES: Readonly<Record<string, string>> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

/** Decodes entities; throws on a bare `&` or an unknown entity, or a `<` (both must be escaped). */
function decode(raw: string, where: string): string {
  let out = "";
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i]!;
    if (ch === "<") throw new Error(`unescaped < in ${where}: ${JSON.stringify(raw)}`);
    if (ch !== "&") {
      out += ch;
      continue;
    }
    const end = raw.indexOf(";", i);
    const name = end < 0 ? "" : raw.slice(i + 1, end);
    const value = ENTITIES[name];
    if (value === undefined) throw new Error(`bare & or unknown entity in ${where}: ${JSON.stringify(raw.slice(i, i + 12))}`);
    out += value;
    i = end;
  }
  return out;
}

const isSpace = (c: string | undefined) => c === " " || c === "\n" || c === "\t" || c === "\r";

/**
 * A tiny XML well-formedness check, without regular expressions: every tag
 * opened is closed in order, one root element, attributes quoted and unique,
 * text and attribute values escaped. @returns every element in document order.
 */
function parseXml(doc: string): XmlElement[] {
  const all: XmlElement[] = [];
  const stack: XmlElement[] = [];
  let roots = 0;
  let i = 0;
  if (doc.startsWith("<?xml")) i = doc.indexOf("?>") + 2;
  while (i < doc.length) {
    const lt = doc.indexOf("<", i);
    const text = doc.slice(i, lt < 0 ? doc.length : lt);
    const top = stack[stack.length - 1];
    if (top) top.text += decode(text, `text of <${top.name}>`);
    else if (text.trim() !== "") throw new Error(`text outside the root element: ${JSON.stringify(text)}`);
    if (lt < 0) break;
    if (doc.startsWith("<!--", lt)) {
      i = doc.indexOf("-->", lt) + 3;
      continue;
    }
    const gt = doc.indexOf(">", lt);
    if (gt < 0) throw new Error("unterminated tag");
    let tag = doc.slice(lt + 1, gt);
    if (tag.startsWith("/")) {
      const open = stack.pop();
      if (!open || open.name !== tag.slice(1)) throw new Error(`</${tag.slice(1)}> closes <${open?.name ?? "nothing"}>`);
      i = gt + 1;
      continue;
    }
    const selfClosing = tag.endsWith("/");
    if (selfClosing) tag = tag.slice(0, -1);
    let j = 0;
    while (j < tag.length && !isSpace(tag[j])) j++;
    const name = tag.slice(0, j);
    if (name === "") throw new Error(`empty tag name at ${lt}`);
    const attrs: Record<string, string> = {};
    for (;;) {
      while (isSpace(tag[j])) j++;
      if (j >= tag.length) break;
      const eq = tag.indexOf("=", j);
      if (eq < 0 || tag[eq + 1] !== '"') throw new Error(`attribute without a quoted value in <${name}>: ${tag.slice(j)}`);
      const key = tag.slice(j, eq);
      const close = tag.indexOf('"', eq + 2);
      if (close < 0) throw new Error(`unterminated attribute ${key} in <${name}>`);
      if (Object.hasOwn(attrs, key)) throw new Error(`attribute ${key} twice in <${name}>`);
      attrs[key] = decode(tag.slice(eq + 2, close), `attribute ${key} of <${name}>`);
      j = close + 1;
    }
    if (stack.length === 0) roots++;
    const element: XmlElement = { name, attrs, text: "", parent: stack[stack.length - 1] };
    all.push(element);
    if (!selfClosing) stack.push(element);
    i = gt + 1;
  }
  if (stack.length > 0) throw new Error(`unclosed <${stack.map((e) => e.name).join("> <")}>`);
  if (roots !== 1) throw new Error(`expected one root element, got ${roots}`);
  return all;
}

const classes = (e: XmlElement) => (e.attrs.class ?? "").split(" ").filter((c) => c !== "");
const hasClass = (e: XmlElement, c: string) => classes(e).includes(c);

function inLane(e: XmlElement): XmlElement | undefined {
  for (let p = e.parent; p; p = p.parent) if (hasClass(p, "lane")) return p;
  return undefined;
}

function data(over: Partial<TimelineData> = {}): TimelineData {
  const lanes = [0, 1, 2].map((p) => ({ partition: p, node: `speed-${p % 2}`, streamHead: 100 + p * 10, appliedSeq: 98 + p * 10, archivedSeq: 95 + p * 10 }));
  const runs = [1, 2, 3].map((run) => ({ run, outcome: "published", cuts: [0, 1, 2].map((p) => ({ partition: p, seq: run * 20 + p })) }));
  return { lanes, runs, currentRun: 3, title: "127.0.0.1:50051", generatedAt: new Date(Date.UTC(2026, 5, 8, 14, 23)), ...over };
}

test("timeline: a well-formed SVG document with one lane per partition and one cut mark per run and partition", () => {
  const svg = buildTimelineSvg(data());
  assert.ok(svg.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<svg '));
  const els = parseXml(svg);
  const root = els[0]!;
  assert.equal(root.name, "svg");
  assert.equal(root.attrs.xmlns, "http://www.w3.org/2000/svg");
  const lanes = els.filter((e) => e.name === "g" && hasClass(e, "lane"));
  assert.deepEqual(lanes.map((l) => l.attrs["data-partition"]), ["0", "1", "2"]);
  const cuts = els.filter((e) => e.name === "g" && hasClass(e, "cut") && e.attrs["data-run"] !== undefined);
  assert.equal(cuts.length, 9);
  for (const lane of lanes) {
    const mine = cuts.filter((c) => inLane(c) === lane);
    assert.deepEqual(mine.map((c) => Number(c.attrs["data-run"])).sort(), [1, 2, 3]);
    // The label of each cut is its run number.
    for (const c of mine) assert.equal(els.find((e) => e.parent === c && e.name === "text")!.text, c.attrs["data-run"]);
  }
  // The current watermark's cut is highlighted, on every partition, and only it.
  const current = cuts.filter((c) => hasClass(c, "current"));
  assert.deepEqual(current.map((c) => [c.attrs["data-run"], c.attrs["data-partition"], c.attrs["data-seq"]]), [
    ["3", "0", "60"],
    ["3", "1", "61"],
    ["3", "2", "62"],
  ]);
  // Per lane: one head, one applied and one archived mark, one batch and one speed region.
  for (const cls of ["head", "applied", "archived", "batch-region", "speed-region"]) {
    assert.equal(els.filter((e) => hasClass(e, cls) && inLane(e) !== undefined).length, 3, cls);
  }
  const stats = els.filter((e) => hasClass(e, "lane-stats")).map((e) => e.text);
  assert.equal(stats[1], "batch cut 61 (run 3) · applied 108 (speed lag 2) · archived 105 (archiver lag 5) · head 110");
});

test("timeline: marks sit on one shared scale, in the order of their sequences", () => {
  const d = data();
  const els = parseXml(buildTimelineSvg(d));
  const lane = els.find((e) => hasClass(e, "lane") && e.attrs["data-partition"] === "2")!;
  const xOfCut = (run: number) => Number(els.find((e) => e.parent?.attrs["data-run"] === String(run) && inLane(e) === lane && e.name === "line")!.attrs.x1);
  const applied = Number(els.find((e) => hasClass(e, "applied") && inLane(e) === lane)!.attrs.cx);
  assert.ok(xOfCut(1) < xOfCut(2) && xOfCut(2) < xOfCut(3) && xOfCut(3) < applied, "cut 1 < cut 2 < cut 3 < applied");
  const { lo, hi } = timelineDomain(d);
  assert.ok(lo <= 20 && hi >= 120 && lo >= 0, `domain ${lo}..${hi}`);
  assert.deepEqual(timelineDomain(data({ lanes: [], runs: [] })), { lo: 0, hi: 1 });
});

test("timeline: every text is escaped; nothing external", () => {
  const nasty = `<script>alert("x") & 'y'</script>`;
  const svg = buildTimelineSvg(
    data({
      title: nasty,
      lanes: [{ partition: 0, node: "a<b&c", streamHead: 10, appliedSeq: 10, archivedSeq: 9 }],
      runs: [{ run: 1, outcome: 'pub"lished <x>', cuts: [{ partition: 0, seq: 5 }] }],
      currentRun: 1,
    }),
  );
  assert.ok(!svg.includes("<script"), "no raw <script");
  const els = parseXml(svg);
  assert.ok(els.some((e) => e.name === "title" && e.text === `lambda watermark timeline: ${nasty}`));
  assert.ok(els.some((e) => hasClass(e, "lane-node") && e.text === "a<b&c"));
  const cut = els.find((e) => hasClass(e, "cut") && e.attrs["data-run"] === "1")!;
  assert.ok(classes(cut).every((c) => [...c].every((ch) => (ch >= "a" && ch <= "z") || (ch >= "0" && ch <= "9") || ch === "_")), cut.attrs.class);
  for (const e of els) {
    assert.ok(!["script", "image", "use", "a", "foreignObject", "iframe"].includes(e.name), `no <${e.name}>`);
    for (const [k, v] of Object.entries(e.attrs)) {
      assert.ok(!k.endsWith("href"), `no ${k}`);
      if (k !== "xmlns") assert.ok(!v.includes("://"), `no URL in ${k}="${v}"`);
    }
  }
  assert.equal(escapeXml(`a&b<c>d"e'f`), "a&amp;b&lt;c&gt;d&quot;e&apos;f");
  assert.equal(escapeXml("bell\u0007"), "bell\ufffd");
});

test("timeline: runs without cuts, rolled back runs, no watermark yet", () => {
  const runs = [
    { run: 1, outcome: "published", cuts: [{ partition: 0, seq: 10 }] },
    { run: 2, outcome: "rolled_back", cuts: [{ partition: 0, seq: 20 }] },
    { run: 3, outcome: "failed", cuts: [] },
  ];
  const lanes = [{ partition: 0, node: "", streamHead: 30, appliedSeq: 25, archivedSeq: 30 }];
  const els = parseXml(buildTimelineSvg(data({ lanes, runs, currentRun: 1 })));
  const cuts = els.filter((e) => hasClass(e, "cut") && e.attrs["data-run"] !== undefined);
  assert.deepEqual(cuts.map((c) => c.attrs["data-run"]).sort(), ["1", "2"]);
  assert.ok(hasClass(cuts.find((c) => c.attrs["data-run"] === "2")!, "rolled_back"));
  assert.ok(els.some((e) => e.name === "text" && e.text.includes("3 failed (no cuts)")));
  assert.ok(els.some((e) => hasClass(e, "lane-node") && e.text === "(unowned)"));

  const none = parseXml(buildTimelineSvg(data({ lanes, runs: [], currentRun: 0 })));
  assert.equal(none.filter((e) => hasClass(e, "cut") && e.attrs["data-run"] !== undefined).length, 0);
  assert.equal(none.filter((e) => hasClass(e, "batch-region") && inLane(e)).length, 0);
  assert.ok(none.some((e) => e.name === "text" && e.text.includes("no batch watermark yet")));
  assert.ok(none.some((e) => hasClass(e, "lane-stats") && e.text.startsWith("no batch cut")));
});

test("timeline: labels of cuts at the same place go on different rows", () => {
  const runs = [1, 2, 3].map((run) => ({ run, outcome: "published", cuts: [{ partition: 0, seq: 50 }] }));
  const lanes = [{ partition: 0, node: "n", streamHead: 1_000, appliedSeq: 1_000, archivedSeq: 1_000 }];
  const els = parseXml(buildTimelineSvg(data({ lanes, runs, currentRun: 3 })));
  const labels = els.filter((e) => e.name === "text" && e.parent !== undefined && hasClass(e.parent, "cut") && e.parent.attrs["data-run"] !== undefined);
  assert.equal(new Set(labels.map((l) => l.attrs.y)).size, 3);
});

test("the well-formedness check itself refuses broken documents", () => {
  assert.throws(() => parseXml("<a><b></a></b>"), /closes/);
  assert.throws(() => parseXml("<a>x & y</a>"), /bare &/);
  assert.throws(() => parseXml("<a><b></a>"), /closes/);
  assert.throws(() => parseXml("<a x=1/>"), /quoted/);
  assert.throws(() => parseXml("<a/><b/>"), /one root/);
  assert.throws(() => parseXml("<a>"), /unclosed/);
  assert.deepEqual(parseXml('<a k="&lt;v&gt;">t</a>').map((e) => [e.name, e.attrs.k, e.text]), [["a", "<v>", "t"]]);
});
