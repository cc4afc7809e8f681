/**
 * The picture behind `lambdactl watermark timeline`: where batch ends and how
 * far speed runs ahead, per partition. Pure: plain values in, one
 * self-contained SVG document out (no scripts, fonts, images or links), so it
 * opens in any browser and can be checked in a test.
 *
 * Each partition is a horizontal lane on one shared scale of stream
 * sequences. On it: a mark for each run's cut, labelled with the run number
 * (the current watermark's cut highlighted, rolled-back and failed runs
 * dashed); the shaded batch region up to the current cut and the speed region
 * from the cut to the speed actor's applied position; the stream head
 * (triangle), the applied position (circle) and the archiver's flushed
 * position (square). Every text is XML-escaped.
 */

/** One partition's positions, from `GetStatus`. */
export interface TimelineLane {
  readonly partition: number;
  /** The node owning the partition's speed actor ("" when unowned). */
  readonly node: string;
  readonly streamHead: number;
  readonly appliedSeq: number;
  readonly archivedSeq: number;
}

/** One batch run and its cuts, from `ListRuns`. */
export interface TimelineRun {
  readonly run: number;
  readonly outcome: string;
  readonly cuts: readonly { readonly partition: number; readonly seq: number }[];
}

/** Everything the picture shows. */
export interface TimelineData {
  readonly lanes: readonly TimelineLane[];
  /** In any order; drawn by run number. */
  readonly runs: readonly TimelineRun[];
  /** The current watermark's run; 0 when there is none. */
  readonly currentRun: number;
  /** Shown at the top, e.g. the serving node's address. */
  readonly title: string;
  /** When the data was read. */
  readonly generatedAt: Date;
}

/** Width of the picture in px. */
export const TIMELINE_WIDTH_PX = 1200;

const LABEL_W = 130;
const RIGHT_PAD = 40;
const TOP = 78;
const LANE_H = 84;
const LEGEND_H = 96;
/** Cut labels closer than this (px) go on another row. */
const LABEL_GAP_PX = 16;
const LABEL_ROWS = 3;

/** Escapes text for XML element content and attribute values. */
export function escapeXml(text: string): string {
  let out = "";
  for (const ch of text) {
    if (ch === "&") out += "&amp;";
    else if (ch === "<") out += "&lt;";
    else if (ch === ">") out += "&gt;";
    else if (ch === '"') out += "&quot;";
    else if (ch === "'") out += "&apos;";
    else {
      const c = ch.codePointAt(0)!;
      // Control characters other than tab and newlines are not allowed in XML 1.0.
      out += c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d ? "\ufffd" : ch;
    }
  }
  return out;
}

/** An outcome as one CSS class word (a server's outcome text could hold anything). */
function outcomeClass(outcome: string): string {
  let out = "";
  for (const ch of outcome.toLowerCase()) out += (ch >= "a" && ch <= "z") || (ch >= "0" && ch <= "9") ? ch : "_";
  return out;
}

type Attrs = Readonly<Record<string, string | number>>;

function attrs(a: Attrs): string {
  return Object.entries(a)
    .map(([k, v]) => ` ${k}="${escapeXml(typeof v === "number" ? fmt(v) : v)}"`)
    .join("");
}

/** A coordinate with at most one decimal. */
function fmt(n: number): string {
  return String(Math.round(n * 10) / 10);
}

function el(name: string, a: Attrs, children: string | readonly string[] = []): string {
  const body = typeof children === "string" ? escapeXml(children) : children.join("");
  return body === "" ? `<${name}${attrs(a)}/>` : `<${name}${attrs(a)}>${body}</${name}>`;
}

/** The shared scale: the lowest and highest sequence shown, padded a little. */
export function timelineDomain(data: TimelineData): { readonly lo: number; readonly hi: number } {
  const shown = data.runs.flatMap((r) => r.cuts.map((c) => c.seq));
  const positions = data.lanes.flatMap((l) => [l.streamHead, l.appliedSeq, l.archivedSeq]);
  const all = [...shown, ...positions];
  if (all.length === 0) return { lo: 0, hi: 1 };
  const min = Math.min(...all);
  const max = Math.max(...all);
  const pad = Math.max(1, Math.ceil((max - min) * 0.04));
  return { lo: Math.max(0, min - pad), hi: max + pad };
}

/** Rows for labels at sorted x positions so that labels in a row keep {@link LABEL_GAP_PX} apart (the last row takes the rest). */
function labelRows(xs: readonly number[]): number[] {
  const lastX: number[] = Array.from({ length: LABEL_ROWS }, () => -Infinity);
  return xs.map((x) => {
    let row = lastX.findIndex((last) => x - last >= LABEL_GAP_PX);
    if (row < 0) row = LABEL_ROWS - 1;
    lastX[row] = x;
    return row;
  });
}

const STYLE = `
text { font-family: sans-serif; font-size: 11px; fill: #222; }
.title { font-size: 16px; font-weight: bold; }
.subtitle { fill: #555; }
.lane-label { font-size: 13px; font-weight: bold; }
.lane-node, .lane-stats, .tick-label { fill: #555; font-size: 10px; }
.lane-bg { fill: #f7f7f7; }
.axis { stroke: #999; stroke-width: 1; }
.tick { stroke: #ddd; stroke-width: 1; }
.batch-region { fill: #cfe0f5; }
.speed-region { fill: #fde2c4; }
.cut line { stroke: #3a6fb0; stroke-width: 1.5; }
.cut text { fill: #3a6fb0; font-size: 10px; text-anchor: middle; }
.cut.current line { stroke: #c0392b; stroke-width: 3; }
.cut.current text { fill: #c0392b; font-weight: bold; font-size: 12px; }
.cut.rolled_back line, .cut.failed line, .cut.running line { stroke: #999; stroke-dasharray: 3 2; }
.cut.rolled_back text, .cut.failed text, .cut.running text { fill: #999; }
.head { fill: #2d2d2d; }
.applied { fill: #e67e22; stroke: #fff; stroke-width: 1; }
.archived { fill: #27ae60; stroke: #fff; stroke-width: 1; }
`;

/**
 * Builds the timeline as an SVG document.
 * @returns the document, starting with the XML declaration.
 */
export function buildTimelineSvg(data: TimelineData): string {
  const width = TIMELINE_WIDTH_PX;
  const lanes = [...data.lanes].sort((a, b) => a.partition - b.partition);
  const runs = [...data.runs].sort((a, b) => a.run - b.run);
  const height = TOP + lanes.length * LANE_H + LEGEND_H;
  const { lo, hi } = timelineDomain(data);
  const x0 = LABEL_W;
  const x1 = width - RIGHT_PAD;
  const xOf = (seq: number) => x0 + ((seq - lo) / (hi - lo)) * (x1 - x0);
  const current = runs.find((r) => r.run === data.currentRun);

  const ticks = Array.from({ length: 6 }, (_, i) => Math.round(lo + ((hi - lo) * i) / 5));
  const axis = [
    ...ticks.map((t) => el("line", { class: "tick", x1: xOf(t), y1: TOP - 8, x2: xOf(t), y2: TOP + lanes.length * LANE_H })),
    ...ticks.map((t) => el("text", { class: "tick-label", x: xOf(t), y: TOP - 12, "text-anchor": "middle" }, String(t))),
  ];

  const laneEls = lanes.map((lane, i) => {
    const y0 = TOP + i * LANE_H;
    const yLine = y0 + 46;
    const p = lane.partition;
    const cutOf = (r: TimelineRun) => r.cuts.find((c) => c.partition === p)?.seq;
    const currentCut = current ? cutOf(current) : undefined;
    const regions: string[] = [];
    if (currentCut !== undefined) {
      regions.push(el("rect", { class: "batch-region", x: x0, y: yLine - 8, width: Math.max(0, xOf(currentCut) - x0), height: 16 }, [el("title", {}, `batch: below the cut ${currentCut} of run ${current!.run}`)]));
      if (lane.appliedSeq > currentCut) {
        regions.push(
          el("rect", { class: "speed-region", x: xOf(currentCut), y: yLine - 8, width: xOf(lane.appliedSeq) - xOf(currentCut), height: 16 }, [
            el("title", {}, `speed: from the cut ${currentCut} to the applied position ${lane.appliedSeq}`),
          ]),
        );
      }
    }
    const marks = runs.flatMap((r) => {
      const seq = cutOf(r);
      return seq === undefined ? [] : [{ run: r, seq, x: xOf(seq) }];
    });
    // Draw the current cut last so it stays on top; place labels by x.
    const byX = [...marks].sort((a, b) => a.x - b.x || a.run.run - b.run.run);
    const rows = labelRows(byX.map((m) => m.x));
    const cutEls = byX
      .map((m, k) => ({ ...m, row: rows[k]! }))
      .sort((a, b) => Number(a.run.run === data.currentRun) - Number(b.run.run === data.currentRun))
      .map((m) => {
        const isCurrent = m.run.run === data.currentRun;
        const cls = ["cut", isCurrent ? "current" : "", outcomeClass(m.run.outcome)].filter((c) => c !== "").join(" ");
        const labelY = y0 + 14 + m.row * 11;
        const what = `run ${m.run.run}${isCurrent ? " (current watermark)" : ""}: cut ${m.seq}, ${m.run.outcome}`;
        return el("g", { class: cls, "data-run": m.run.run, "data-partition": p, "data-seq": m.seq }, [
          el("title", {}, what),
          el("line", { x1: m.x, y1: labelY + 2, x2: m.x, y2: yLine + 10 }),
          el("text", { x: m.x, y: labelY }, String(m.run.run)),
        ]);
      });
    const head = xOf(lane.streamHead);
    const positions = [
      el("circle", { class: "applied", cx: xOf(lane.appliedSeq), cy: yLine, r: 5 }, [el("title", {}, `speed actor applied ${lane.appliedSeq}`)]),
      el("rect", { class: "archived", x: xOf(lane.archivedSeq) - 4, y: yLine + 6, width: 8, height: 8 }, [el("title", {}, `archiver flushed ${lane.archivedSeq}`)]),
      el("path", { class: "head", d: `M ${fmt(head - 6)} ${fmt(yLine - 16)} L ${fmt(head + 6)} ${fmt(yLine - 16)} L ${fmt(head)} ${fmt(yLine - 6)} Z` }, [
        el("title", {}, `stream head ${lane.streamHead}`),
      ]),
    ];
    const cutText = currentCut === undefined ? "no batch cut" : `batch cut ${currentCut} (run ${current!.run})`;
    const stats =
      `${cutText} · applied ${lane.appliedSeq} (speed lag ${Math.max(0, lane.streamHead - lane.appliedSeq)}) · ` +
      `archived ${lane.archivedSeq} (archiver lag ${Math.max(0, lane.streamHead - lane.archivedSeq)}) · head ${lane.streamHead}`;
    return el("g", { class: "lane", "data-partition": p }, [
      el("rect", { class: "lane-bg", x: 8, y: y0 + 2, width: width - 16, height: LANE_H - 4, rx: 4 }),
      el("text", { class: "lane-label", x: 16, y: yLine - 2 }, `partition ${p}`),
      el("text", { class: "lane-node", x: 16, y: yLine + 12 }, lane.node || "(unowned)"),
      ...regions,
      el("line", { class: "axis", x1: x0, y1: yLine, x2: x1, y2: yLine }),
      ...cutEls,
      ...positions,
      el("text", { class: "lane-stats", x: x0, y: y0 + LANE_H - 10 }, stats),
    ]);
  });

  const legendY = TOP + lanes.length * LANE_H + 24;
  const runList = runs.map((r) => `${r.run} ${r.outcome}${r.run === data.currentRun ? " (current)" : ""}${r.cuts.length === 0 ? " (no cuts)" : ""}`).join(", ");
  // Legend items side by side: a swatch, then its text (about 6 px per character at 11 px).
  const swatches: readonly [(x: number) => string, string][] = [
    [(x) => el("rect", { class: "batch-region", x, y: legendY - 9, width: 18, height: 10 }), "batch: below the current cut"],
    [(x) => el("rect", { class: "speed-region", x, y: legendY - 9, width: 18, height: 10 }), "speed: cut to applied"],
    [(x) => el("path", { class: "head", d: `M ${x} ${legendY - 9} L ${x + 12} ${legendY - 9} L ${x + 6} ${legendY} Z` }), "stream head"],
    [(x) => el("circle", { class: "applied", cx: x + 5, cy: legendY - 4, r: 5 }), "applied (speed actor)"],
    [(x) => el("rect", { class: "archived", x: x + 1, y: legendY - 8, width: 8, height: 8 }), "archived (archiver)"],
    [(x) => el("g", { class: "cut current" }, [el("line", { x1: x + 4, y1: legendY - 10, x2: x + 4, y2: legendY + 2 })]), "current cut"],
    [(x) => el("g", { class: "cut" }, [el("line", { x1: x + 4, y1: legendY - 10, x2: x + 4, y2: legendY + 2 })]), "older cut"],
    [(x) => el("g", { class: "cut rolled_back" }, [el("line", { x1: x + 4, y1: legendY - 10, x2: x + 4, y2: legendY + 2 })]), "rolled back or failed"],
  ];
  const legendItems: string[] = [];
  let lx = 16;
  for (const [swatch, label] of swatches) {
    legendItems.push(swatch(lx), el("text", { x: lx + 24, y: legendY }, label));
    lx += 24 + label.length * 6 + 22;
  }
  const legend = el("g", { class: "legend" }, [
    ...legendItems,
    el("text", { class: "subtitle", x: 16, y: legendY + 26 }, runs.length === 0 ? "runs: none yet" : `runs: ${runList}`),
    el("text", { class: "subtitle", x: 16, y: legendY + 44 }, "x axis: stream sequence, one scale for every partition; events below a run's cut are in its batch view."),
  ]);

  const heading = data.currentRun === 0 ? "no batch watermark yet" : `watermark at run ${data.currentRun}`;
  const doc = el("svg", { xmlns: "http://www.w3.org/2000/svg", width, height, viewBox: `0 0 ${width} ${height}`, role: "img" }, [
    el("title", {}, `lambda watermark timeline: ${data.title}`),
    el("style", {}, STYLE),
    el("rect", { x: 0, y: 0, width, height, fill: "#ffffff" }),
    el("text", { class: "title", x: 16, y: 26 }, `Watermark timeline: ${data.title}`),
    el("text", { class: "subtitle", x: 16, y: 44 }, `${heading}; ${lanes.length} partitions, ${runs.length} runs; read ${data.generatedAt.toISOString()}`),
    ...axis,
    ...laneEls,
    legend,
  ]);
  return `<?xml version="1.0" encoding="UTF-8"?>\n${doc}\n`;
}
