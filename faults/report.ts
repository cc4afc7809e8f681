/**
 * The fault matrix's report: one row per run, and per fault a summary (runs,
 * invariants broken, answers, recovery median and max), as Markdown. run.ts
 * writes it after a run; `npm run faults -- --render FILE.json` writes it again
 * from a results file.
 */

export interface Row {
  fault: string;
  iteration: number;
  target: string;
  /** What the heal saw, when it says (e.g. F5: how many the client retried). */
  healed?: string;
  published: number;
  acked: number;
  unknownAttempts: number;
  unresolved: number;
  /** Unresolved events the master dataset holds after all (the run's distinct events minus the acknowledged), and those it lacks. */
  unresolvedLanded: number;
  unresolvedAbsent: number;
  /** Writes the roles refused because a newer leader or owner had written (their logs: FencedError, SnapshotFencedError). */
  staleWritesRefused: number;
  /** Where lost events went missing, when some did (faults/check.ts checkMasterAgainstStream). */
  diagnosis?: string[];
  /** Why the fault was not made on this machine. */
  cannotRun?: string;
  queriesComplete: number;
  queriesPartial: number;
  queriesFailed: number;
  /** Why answers were partial or failed, and how often. */
  queryReasons: Record<string, number>;
  recoveryMs: number | null;
  watermarkRun: number;
  problems: string[];
}

export function emptyRow(fault: string, iteration: number): Row {
  return { fault, iteration, target: "-", published: 0, acked: 0, unknownAttempts: 0, unresolved: 0, unresolvedLanded: 0, unresolvedAbsent: 0, staleWritesRefused: 0, queriesComplete: 0, queriesPartial: 0, queriesFailed: 0, queryReasons: {}, recoveryMs: null, watermarkRun: 0, problems: [] };
}

/** Invariant violations of a row by kind: lost (I0, I1, I3), counted twice (I2), backwards (I4), other (I5, a fault's own). */
function kinds(r: Row) {
  const lost = r.problems.filter((p) => /^I[013]/.test(p)).length;
  const twice = r.problems.filter((p) => p.startsWith("I2")).length;
  const back = r.problems.filter((p) => p.startsWith("I4")).length;
  return { lost, twice, back, other: r.problems.length - lost - twice - back };
}

const finished = (r: Row) => !r.cannotRun && !r.problems.some((p) => p.startsWith("did not finish"));

const fmt = (v: number | null) => (v === null ? "-" : String(Math.round(v)));

export function table(rows: readonly Row[]): string {
  const head = "| fault | iter | target | published | acked | unknown attempts (retried) | unresolved: landed / absent | lost / twice / backwards / other | stale writes refused | queries complete / partial / failed | recovery ms |";
  const lines = rows.map((r) => {
    const { lost, twice, back, other } = kinds(r);
    if (r.cannotRun) return `| ${r.fault} | - | cannot be made here: ${r.cannotRun} | | | | | | | | |`;
    if (r.problems.some((p) => p.startsWith("did not finish"))) return `| ${r.fault} | ${r.iteration} | did not finish: ${r.problems[0]!.slice(16, 200)} | | | | | | | | |`;
    const target = r.healed ? `${r.target}; ${r.healed}` : r.target;
    return `| ${r.fault} | ${r.iteration} | ${target} | ${r.published} | ${r.acked} | ${r.unknownAttempts} | ${r.unresolvedLanded} / ${r.unresolvedAbsent} | ${lost} / ${twice} / ${back} / ${other} | ${r.staleWritesRefused} | ${r.queriesComplete} / ${r.queriesPartial} / ${r.queriesFailed} | ${fmt(r.recoveryMs)} |`;
  });
  return [head, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", ...lines].join("\n");
}

/** Per fault: runs (finished / all), events, invariants broken, answers, and recovery median and max over the runs. */
export function summary(rows: readonly Row[]): string {
  const head = "| fault | runs finished | acked | unresolved: landed / absent | lost / twice / backwards / other | stale writes refused | queries complete / partial / failed | recovery median / max ms |";
  const faults = [...new Set(rows.map((r) => r.fault))];
  const lines = faults.map((f) => {
    const all = rows.filter((r) => r.fault === f);
    if (all.every((r) => r.cannotRun)) return `| ${f} | cannot be made here | | | | | | |`;
    const done = all.filter(finished);
    const sum = (k: (r: Row) => number) => all.reduce((a, r) => a + k(r), 0);
    const rec = done.map((r) => r.recoveryMs).filter((v): v is number => v !== null).sort((a, b) => a - b);
    const median = rec.length === 0 ? null : rec.length % 2 ? rec[(rec.length - 1) / 2]! : (rec[rec.length / 2 - 1]! + rec[rec.length / 2]!) / 2;
    return `| ${f} | ${done.length} / ${all.length} | ${sum((r) => r.acked)} | ${sum((r) => r.unresolvedLanded)} / ${sum((r) => r.unresolvedAbsent)} | ${sum((r) => kinds(r).lost)} / ${sum((r) => kinds(r).twice)} / ${sum((r) => kinds(r).back)} / ${sum((r) => kinds(r).other)} | ${sum((r) => r.staleWritesRefused)} | ${sum((r) => r.queriesComplete)} / ${sum((r) => r.queriesPartial)} / ${sum((r) => r.queriesFailed)} | ${fmt(median)} / ${fmt(rec.at(-1) ?? null)} |`;
  });
  return [head, "| --- | --- | --- | --- | --- | --- | --- | --- |", ...lines].join("\n");
}

/** The whole report: the summary, every run, the faults' titles, and how the run was made. */
export function report(rows: readonly Row[], titles: readonly { id: string; title: string }[], footer: string): string {
  return `${summary(rows)}\n\n${table(rows)}\n\n${titles.map((f) => `- ${f.id}: ${f.title}`).join("\n")}\n\n${footer}\n`;
}
