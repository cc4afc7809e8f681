/**
 * The batch watermark as lambdactl shows it, wherever one appears: `watermark`
 * (and every frame of `watermark --watch`), the end of `run`, the result of
 * `watermark rollback`. Pure: values in, text or JSON shapes out.
 */
import type { Watermark } from "../gen/lambda/v1/serving.js";
import { formatAge, formatMs, formatTime, keyValues, table } from "./render.js";

/** The stable JSON shape of one watermark (inside {@link WatermarkJson}, `run --json` and `watermark rollback --json`). */
export interface WatermarkObjectJson {
  readonly run: number;
  readonly viewVersion: number;
  /** ISO 8601. */
  readonly publishedAt: string | null;
  /** Milliseconds between publication and the time lambdactl printed it. */
  readonly ageMs: number | null;
  readonly coordinator: string;
  /** Event-time range the batch views cover, ISO 8601; null when they cover no events. */
  readonly coveredFrom: string | null;
  readonly coveredTo: string | null;
  readonly eventsCovered: number;
  readonly timings: { readonly barrierMs: number; readonly archiverFlushMs: number; readonly recomputeMs: number };
  readonly cuts: readonly { readonly partition: number; readonly seq: number }[];
}

/** The stable JSON shape of `watermark --json` (and of each line of `watermark --watch --json`); `watermark` is null when `present` is false. */
export interface WatermarkJson {
  readonly present: boolean;
  readonly watermark: WatermarkObjectJson | null;
}

/** One watermark as JSON, its age seen at `nowMs`. */
export function watermarkObjectJson(w: Watermark, nowMs: number): WatermarkObjectJson {
  const t = w.timings;
  return {
    run: w.run,
    viewVersion: w.viewVersion,
    publishedAt: w.publishedAt?.toISOString() ?? null,
    ageMs: w.publishedAt ? nowMs - w.publishedAt.getTime() : null,
    coordinator: w.coordinator,
    coveredFrom: w.coveredFrom?.toISOString() ?? null,
    coveredTo: w.coveredTo?.toISOString() ?? null,
    eventsCovered: w.eventsCovered,
    timings: { barrierMs: t?.barrierMs ?? 0, archiverFlushMs: t?.archiverFlushMs ?? 0, recomputeMs: t?.recomputeMs ?? 0 },
    cuts: w.cuts.map((c) => ({ partition: c.partition, seq: c.seq })),
  };
}

/** A GetWatermark reply (or a WatchWatermark message) as `--json` prints it. */
export function watermarkJson(r: { readonly present: boolean; readonly watermark: Watermark | undefined }, nowMs: number): WatermarkJson {
  const w = r.present ? r.watermark : undefined;
  return w ? { present: true, watermark: watermarkObjectJson(w, nowMs) } : { present: false, watermark: null };
}

/** The watermark as text: a summary block and the table of cuts. */
export function renderWatermark(w: Watermark, nowMs: number): string {
  const published = w.publishedAt ? `${formatTime(w.publishedAt)} (${formatAge(w.publishedAt.getTime(), nowMs)})` : "-";
  const covered = w.coveredFrom && w.coveredTo ? `${formatTime(w.coveredFrom)} .. ${formatTime(w.coveredTo)}` : "none";
  const t = w.timings;
  const phases = t ? `barrier ${formatMs(t.barrierMs)}, archiver flush ${formatMs(t.archiverFlushMs)}, recompute ${formatMs(t.recomputeMs)}` : "-";
  const summary = keyValues([
    ["run", w.run],
    ["view version", w.viewVersion],
    ["published at", published],
    ["coordinator", w.coordinator || "-"],
    ["covered range", `${covered} (event time)`],
    ["events covered", w.eventsCovered],
    ["phases", phases],
  ]);
  return `${summary}\n${table(["partition", "cut seq"], w.cuts.map((c) => [c.partition, c.seq]))}`;
}

/** What `watermark` prints before the first batch run. */
export const NO_WATERMARK_TEXT = "no watermark yet: no batch run has published, so every answer comes from the speed layer alone\n";

/** A reply as text: the watermark, or {@link NO_WATERMARK_TEXT}. */
export function renderWatermarkReply(r: { readonly present: boolean; readonly watermark: Watermark | undefined }, nowMs: number): string {
  return r.present && r.watermark ? renderWatermark(r.watermark, nowMs) : NO_WATERMARK_TEXT;
}

/** Clears an ANSI terminal and moves the cursor home: a `--watch` frame starts with it in a TTY. */
export const CLEAR_SCREEN = "\x1b[H\x1b[2J";

/**
 * One frame of `watermark --watch` as text.
 * - In a terminal: clear the screen, a status line, the watermark.
 * - Otherwise (a pipe, a file): a separator line naming the change, the
 *   watermark, a blank line; frames follow each other so the output is a log.
 * @param nowMs when the change was seen.
 */
export function renderWatchFrame(r: { readonly present: boolean; readonly watermark: Watermark | undefined }, nowMs: number, tty: boolean): string {
  const seen = new Date(nowMs).toISOString();
  const what = r.present && r.watermark ? `run ${r.watermark.run}` : "no watermark";
  const body = renderWatermarkReply(r, nowMs);
  if (tty) return `${CLEAR_SCREEN}watching the watermark (Ctrl-C to stop); last change seen ${seen}\n\n${body}`;
  return `--- ${seen}: ${what}\n${body}\n`;
}
