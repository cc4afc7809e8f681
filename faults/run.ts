#!/usr/bin/env node
/**
 * `npm run faults`: the fault matrix. For each fault, a fresh cluster of
 * processes on a 3-node NATS cluster (faults/cluster.ts), a producer with a
 * ledger and a query load running throughout; the fault is made at a random
 * moment, held, healed; then, with the system quiet, the invariants are
 * checked against the ledger (faults/check.ts). Prints a table and writes it
 * (JSON and Markdown) to faults/results/. Exit code 1 when an invariant broke.
 *
 *   npm run faults                              every fault, 3 iterations
 *   npm run faults -- --only F1,F7 --iterations 5
 *   npm run faults -- --quick                   F1 and F7 once (CI)
 *   npm run faults -- --only F3,F7 --soak 30    the faults round after round for 30 minutes
 *   npm run faults -- --render faults/results/X.json   a results file's report again
 *   npm run faults -- --verbose                 the roles' logs (level info) on stderr
 *   npm run faults -- --keep-logs               the roles' logs (level warn) of every run in faults/results/logs/
 *                                               (always kept for a run that broke an invariant or did not finish)
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { prng } from "../src/ingest/synthetic.js";
import { waitFor } from "../src/core/wait.js";
import { readStreamReport } from "../src/nats/stream_retention.js";
import { PARTITIONS, startFaultCluster, type FaultCluster } from "./cluster.js";
import { checkAssignmentEpochs, checkMasterAgainstStream, checkQuiet, checkStreamHoldsAcked, checkWatermarkHistory, recordAssignments, recordWatermarks, recoveryMs, startQueryLoad, streamIds } from "./check.js";
import { FAULTS, type Fault } from "./faults.js";
import { Ledger, startProducer } from "./ledger.js";
import { emptyRow, report, type Row } from "./report.js";

const REPO = new URL("../..", import.meta.url).pathname;
const QUICK_FAULTS = ["F1", "F7"];
/** Producers and the rate of each: a steady load through the fault. */
const PRODUCERS = 4;
const RATE_PER_PRODUCER = 40;
/** What a role logs when its write is refused as stale (src/nats/kv.ts FencedError; a speed actor's SnapshotFencedError, src/actors/actor.ts). */
const STALE_WRITE_REFUSED = /not written: it was written by leader epoch|not writing snapshots any more: a newer generation owns/g;
/** How long unknown publishes are retried after the producer stops. */
const RETRY_AFTER_STOP_MS = 30_000;


/** Copies the roles' logs of a run to faults/results/logs/<fault>-<iteration>/, for a run that broke something or on --keep-logs. */
function keepLogs(from: string, fault: string, iteration: number): string {
  const to = join(REPO, "faults/results/logs", `${fault}-${iteration}`);
  rmSync(to, { recursive: true, force: true });
  cpSync(from, to, { recursive: true });
  return to;
}

/** Stops main and reads its master rows of pageviews through faults/master_rows.ts. */
async function masterRows(cluster: FaultCluster): Promise<{ p: number; seq: number; id: string }[]> {
  await cluster.processes.get("main")!.stop();
  const out = execFileSync(process.execPath, [join(REPO, "dist/faults/master_rows.js"), cluster.chdbPath, cluster.env.LAMBDA_DATABASE!, "pageviews"], { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
  return out.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { p: number; seq: number; id: string });
}

async function runOnce(fault: Fault, iteration: number, seed: number, opts: { quick: boolean; verbose: boolean; keepLogs: boolean }): Promise<Row> {
  const rand = prng(seed);
  const scratch = mkdtempSync(join(tmpdir(), `lambda-${fault.id}-`));
  const cluster = await startFaultCluster(join(REPO, "catalog/catalog.json"), { verbose: opts.verbose, env: fault.env?.(scratch), network: fault.network, disks: fault.disks });
  let keep = opts.keepLogs && !opts.verbose;
  try {
    const { history, watch } = await recordWatermarks(cluster.buckets);
    const assignments = await recordAssignments(cluster.buckets);
    const ledger = new Ledger(rand);
    const producer = startProducer(cluster.ingest, ledger, PRODUCERS, RATE_PER_PRODUCER);
    const queries = startQueryLoad(() => cluster.grpc(), ledger);
    try {
      // Warm: events acknowledged and a batch run published; then the fault at a random moment.
      await waitFor("the first batch run and 200 acknowledged events", () => history.length > 0 && ledger.counts.acked >= 200, { timeoutMs: 60_000, intervalMs: 50 });
      await new Promise((r) => setTimeout(r, Math.floor(rand() * 2_000)));
      const faultAt = performance.now();
      const injected = await fault.inject(cluster, { rand, quick: opts.quick, ledger, scratch });
      const healed = (await injected.heal()) ?? undefined;
      const healedAt = performance.now();
      // Load goes on after the heal, then stops; unknown publishes are retried a while longer.
      const ackedAtHeal = ledger.counts.acked;
      await waitFor("200 more events acknowledged after the heal", () => ledger.counts.acked >= ackedAtHeal + 200, { timeoutMs: 60_000, intervalMs: 50 });
      await producer.stop(RETRY_AFTER_STOP_MS);
      const quiet = await checkQuiet(cluster.nc, cluster.names, PARTITIONS, history, () => cluster.grpc(), ledger, rand);
      await queries.stop();
      const bySeq = await streamIds(cluster.nc, cluster.names);
      // What stream retention let go (the coordinator's record): I0 does not look for it there.
      const purgedBelow = (await readStreamReport(cluster.nc, cluster.names)).retention?.keepFrom ?? [];
      const streamProblems = checkStreamHoldsAcked(bySeq, ledger, purgedBelow);
      // Events missing: say where the archive and the stream part (main stops to free its chDB directory).
      const diagnosis = quiet.problems.some((p) => p.startsWith("I1")) ? checkMasterAgainstStream(bySeq, await masterRows(cluster)) : [];
      watch.stop();
      assignments.watch.stop();
      const t = queries.tally;
      const landed = Math.max(0, quiet.watermark.eventsCovered - ledger.counts.acked);
      const row: Row = {
        fault: fault.id,
        iteration,
        target: injected.target,
        healed,
        ...ledger.counts,
        unresolvedLanded: landed,
        unresolvedAbsent: Math.max(0, ledger.counts.unresolved - landed),
        queriesComplete: t.complete,
        queriesPartial: t.partial,
        queriesFailed: t.failed,
        queryReasons: t.reasons,
        recoveryMs: recoveryMs(t, faultAt, healedAt),
        watermarkRun: quiet.watermark.run,
        staleWritesRefused: (cluster.logs().match(STALE_WRITE_REFUSED) ?? []).length,
        diagnosis,
        problems: [...streamProblems, ...(injected.problems ?? []), ...t.problems, ...quiet.problems, ...checkWatermarkHistory(history), ...checkAssignmentEpochs(assignments.history)],
      };
      if (row.problems.length > 0 && !opts.verbose) keep = true;
      return row;
    } catch (err) {
      if (!opts.verbose) keep = true;
      throw err;
    } finally {
      await producer.stop(0);
      await queries.stop();
    }
  } finally {
    if (keep) process.stderr.write(`  ${fault.id} ${iteration}: the roles' logs are in ${keepLogs(cluster.logsDir, fault.id, iteration)}\n`);
    await cluster.close();
    rmSync(scratch, { recursive: true, force: true });
  }
}


async function main() {
  const { values } = parseArgs({
    options: { only: { type: "string" }, iterations: { type: "string" }, quick: { type: "boolean", default: false }, verbose: { type: "boolean", default: false }, "keep-logs": { type: "boolean", default: false }, soak: { type: "string" }, seed: { type: "string" }, render: { type: "string" } },
  });
  if (values.render) {
    // A results file's report again (e.g. for docs/reliability.md), without running anything.
    const saved = JSON.parse(readFileSync(values.render, "utf8")) as { commit: string; seed: number; rows: Row[] };
    const ids = new Set(saved.rows.map((r) => r.fault));
    process.stdout.write(report(saved.rows, FAULTS.filter((f) => ids.has(f.id)), `seed ${saved.seed}, commit ${saved.commit}`));
    return;
  }
  const quick = values.quick ?? false;
  const only = values.only ? values.only.split(",").map((s) => s.trim().toUpperCase()) : quick ? QUICK_FAULTS : null;
  const unknown = only?.filter((id) => !FAULTS.some((f) => f.id === id)) ?? [];
  if (unknown.length > 0) throw new Error(`unknown fault ${unknown.join(", ")}; the matrix has ${FAULTS.map((f) => f.id).join(", ")}`);
  const iterations = values.iterations ? Number(values.iterations) : quick ? 1 : 3;
  if (!Number.isInteger(iterations) || iterations < 1) throw new Error(`--iterations must be a whole number >= 1, got ${values.iterations}`);
  const seed = values.seed ? Number(values.seed) : Date.now() % 2 ** 31;
  const soakMinutes = values.soak === undefined ? undefined : Number(values.soak);
  if (soakMinutes !== undefined && !(soakMinutes > 0)) throw new Error(`--soak takes minutes > 0, got ${values.soak}`);
  const faults = FAULTS.filter((f) => !only || only.includes(f.id));
  const rows: Row[] = [];
  const started = Date.now();
  const runnable = faults.filter((fault) => {
    const cannotRun = fault.cannotRun?.();
    if (cannotRun) {
      process.stderr.write(`[faults] ${fault.id} cannot be made here: ${cannotRun}\n`);
      rows.push({ ...emptyRow(fault.id, 0), cannotRun });
    }
    return !cannotRun;
  });
  // Each fault `iterations` times; with --soak, round after round of every fault until the minutes are up.
  const soakUntil = soakMinutes === undefined ? undefined : started + soakMinutes * 60_000;
  if (soakUntil === undefined) {
    for (const fault of runnable) for (let i = 1; i <= iterations; i++) await runAndReport(fault, i);
  } else {
    for (let i = 1; Date.now() < soakUntil; i++) for (const fault of runnable) if (Date.now() < soakUntil) await runAndReport(fault, i);
  }

  async function runAndReport(fault: Fault, i: number) {
    const of = soakUntil === undefined ? `/${iterations}` : ` (soak, ${Math.max(0, Math.round((soakUntil - Date.now()) / 60_000))} min left)`;
    process.stderr.write(`[faults ${Math.round((Date.now() - started) / 1000)} s] ${fault.id} ${i}${of}: ${fault.title}\n`);
    // A scenario that cannot finish (a wait timed out) is a failed row, and the matrix goes on.
    const row = await runOnce(fault, i, seed + rows.length, { quick, verbose: values.verbose ?? false, keepLogs: values["keep-logs"] ?? false }).catch(
      (err: unknown): Row => ({ ...emptyRow(fault.id, i), problems: [`did not finish: ${(err as Error).message}`] }),
    );
    rows.push(row);
    for (const p of [...row.problems, ...(row.diagnosis ?? [])]) process.stderr.write(`  ${fault.id} ${i}: ${p}\n`);
  }
  const commit = execFileSync("git", ["rev-parse", "--short=12", "HEAD"], { cwd: REPO, encoding: "utf8" }).trim();
  const text = report(rows, faults, `seed ${seed}, commit ${commit}, ${new Date().toISOString()}, ${Math.round((Date.now() - started) / 1000)} s`);
  process.stdout.write(`\n${text}`);
  const dir = join(REPO, "faults/results");
  mkdirSync(dir, { recursive: true });
  const name = `${new Date().toISOString().slice(0, 10)}-${commit}${quick ? "-quick" : ""}${soakUntil === undefined ? "" : "-soak"}`;
  writeFileSync(join(dir, `${name}.json`), JSON.stringify({ commit, seed, iterations, soakMinutes, rows }, null, 2));
  writeFileSync(join(dir, `${name}.md`), text);
  process.stdout.write(`results: ${join(dir, `${name}.json`)}\n`);
  if (rows.some((r) => r.problems.length > 0)) process.exit(1);
}

main().catch((err) => {
  process.stderr.write(`faults: ${(err as Error).stack ?? err}\n`);
  process.exit(2);
});
