import { test } from "node:test";
import assert from "node:assert/strict";
import { formatCommandHelp, parseCommandLine, requiredRunArg, runArg, UsageError } from "../../src/cli/args.js";
import { namingRuns, RunRefusedError } from "../../src/cli/admin_grpc.js";
import { diffJson, renderDiff } from "../../src/cli/commands/watermark_diff.js";
import { renderRollback, rollbackJson } from "../../src/cli/commands/watermark_rollback.js";
import { renderVerify, verdictLine, verifyJson, verifyProblems } from "../../src/cli/commands/watermark_verify.js";
import { renderStatus, statusJson } from "../../src/cli/commands/status.js";
import { detachedLine, detailText, phaseLabel, progressLine } from "../../src/cli/commands/run.js";
import { timelineData } from "../../src/cli/commands/watermark_timeline.js";
import { watermarkCommand } from "../../src/cli/commands/watermark.js";
import type { CommandSpec } from "../../src/cli/command.js";
import { GrpcCallError } from "../../src/cli/grpc.js";
import { formatElapsed, formatInstant, formatInstantRange, msCell } from "../../src/cli/render.js";
import { cutLayout, formatCutsCompact, renderRunsTable, runJson } from "../../src/cli/run_view.js";
import { parseRunNumberText } from "../../src/cli/values.js";
import { CLEAR_SCREEN, renderWatchFrame, watermarkJson } from "../../src/cli/watermark_view.js";
import { status } from "@grpc/grpc-js";
import type { GetStatusResponse, PartitionCheck, RunInfo, VerifyResponse } from "../../src/gen/lambda/v1/admin.js";
import type { Watermark } from "../../src/gen/lambda/v1/serving.js";

const T0 = Date.UTC(2026, 5, 8, 14, 23, 0);

function runInfo(r: Partial<RunInfo>): RunInfo {
  return {
    run: 1,
    outcome: "published",
    cuts: [],
    viewVersion: 1,
    eventsCovered: 0,
    coveredFrom: undefined,
    coveredTo: undefined,
    startedAt: undefined,
    finishedAt: undefined,
    barrierMs: 0,
    archiverFlushMs: 0,
    recomputeMs: 0,
    publishMs: 0,
    coordinator: "",
    detail: "",
    ...r,
  };
}

function watermark(w: Partial<Watermark>): Watermark {
  return {
    run: 2,
    cuts: [{ partition: 0, seq: 10 }],
    viewVersion: 2,
    coveredFrom: new Date(T0),
    coveredTo: new Date(T0 + 60_000),
    eventsCovered: 7,
    publishedAt: new Date(T0),
    coordinator: "c-1",
    timings: { barrierMs: 1, archiverFlushMs: 2, recomputeMs: 3 },
    ...w,
  };
}

test("run numbers: positive decimal integers; the reason names what was expected", () => {
  const ok = parseRunNumberText("12");
  assert.deepEqual(ok, { kind: "value", value: 12 });
  for (const bad of ["0", "-1", "x", "1.5", "", " 2", "1e3", "99999999999999999999"]) {
    const r = parseRunNumberText(bad);
    assert.equal(r.kind, "invalid", bad);
    assert.match((r as { reason: string }).reason, new RegExp(`expected a run number .*got ${JSON.stringify(JSON.stringify(bad)).slice(1, -1)}`), bad);
  }
});

test("run arguments: parsed, optional ones absent, malformed ones a usage error naming the argument", () => {
  const spec: CommandSpec = { name: "watermark diff", summary: "", args: [{ name: "from" }, { name: "to", optional: true }].map((a) => ({ ...a, description: a.name })), flags: {} };
  const parsed = parseCommandLine(spec, ["3"]);
  assert.equal(requiredRunArg(spec.name, parsed, "from"), 3);
  assert.equal(runArg(spec.name, parsed, "to"), undefined);
  const bad = parseCommandLine(spec, ["3", "x"]);
  assert.throws(
    () => runArg(spec.name, bad, "to"),
    (err: unknown) => err instanceof UsageError && err.command === "watermark diff" && /^<to>: expected a run number/.test(err.message),
  );
});

test("a command with subcommands lists them in its help, each with its own synopsis", () => {
  const help = formatCommandHelp(watermarkCommand.spec, (watermarkCommand.subcommands ?? []).map((s) => s.spec));
  assert.match(help, /^usage: lambdactl watermark \[flags\]$/m);
  assert.match(help, /^ {7}lambdactl watermark diff <from> <to> \[flags\]$/m);
  assert.match(help, /^ {7}lambdactl watermark verify \[run\] \[flags\]$/m);
  assert.match(help, /^ {2}watermark rollback {2}answer at an older run again/m);
  assert.match(help, /^ {2}-w, --watch /m);
});

test("the server's refusal of a named run becomes RunRefusedError; other failures pass through", async () => {
  const target = { value: "127.0.0.1:1", from: "--grpc" };
  const notFound = new GrpcCallError(status.NOT_FOUND, "NOT_FOUND", "run: no run 99", target);
  await assert.rejects(namingRuns("watermark diff", Promise.reject(notFound)), (err: unknown) => {
    assert.ok(err instanceof RunRefusedError);
    assert.equal(err.command, "watermark diff");
    assert.equal(err.message, "NOT_FOUND: run: no run 99");
    return true;
  });
  for (const code of [status.INVALID_ARGUMENT, status.FAILED_PRECONDITION]) {
    await assert.rejects(namingRuns("x", Promise.reject(new GrpcCallError(code, "C", "d", target))), RunRefusedError);
  }
  const unavailable = new GrpcCallError(status.UNAVAILABLE, "UNAVAILABLE", "down", target);
  await assert.rejects(namingRuns("x", Promise.reject(unavailable)), (err) => err === unavailable);
  assert.equal(await namingRuns("x", Promise.resolve(5)), 5);
});

test("formatting helpers: instants to the second, ranges, elapsed times, ms cells", () => {
  assert.equal(formatInstant(new Date(T0 + 5_120)), "2026-06-08T14:23:05Z");
  assert.equal(formatInstant(undefined), "-");
  assert.equal(formatInstantRange(new Date(T0), new Date(T0 + 240_000)), "2026-06-08T14:23:00Z .. 14:27:00Z");
  assert.equal(formatInstantRange(new Date(T0), new Date(T0 + 86_400_000)), "2026-06-08T14:23:00Z .. 2026-06-09T14:23:00Z");
  assert.equal(formatInstantRange(undefined, new Date(T0)), "-");
  assert.equal(formatElapsed(340.4), "340ms");
  assert.equal(formatElapsed(1_440), "1.4s");
  assert.equal(formatElapsed(184_000), "3m 4s");
  assert.equal(formatElapsed(-5), "0ms");
  assert.equal(msCell(12.345), 12.3);
  assert.equal(formatCutsCompact([{ partition: 1, seq: 130 }, { partition: 0, seq: 123 }]), "0:123 1:130");
  assert.equal(formatCutsCompact([]), "-");
});

test("history: a cut column per partition up to 8, one compact column beyond; JSON in partition order", () => {
  const cuts = (n: number, base: number) => Array.from({ length: n }, (_, p) => ({ partition: n - 1 - p, seq: base + n - 1 - p }));
  const runs = [
    runInfo({ run: 2, cuts: cuts(3, 20), startedAt: new Date(T0), finishedAt: new Date(T0 + 1_400), barrierMs: 1.25, recomputeMs: 900, coordinator: "c-1", eventsCovered: 9, viewVersion: 2 }),
    runInfo({ run: 1, outcome: "rolled_back", cuts: cuts(3, 10), detail: "rollback to run 0", coveredFrom: new Date(T0), coveredTo: new Date(T0 + 60_000) }),
    runInfo({ run: 3, outcome: "failed", detail: "archiver timed out" }),
  ];
  assert.deepEqual(cutLayout(runs), { partitions: [0, 1, 2], columns: true });
  const text = renderRunsTable(runs);
  assert.match(text, /^run\s+outcome\s+p0\s+p1\s+p2\s+view\s+events\s+event time\s+started\s+duration\s+barrier ms\s+flush ms\s+recompute ms\s+publish ms\s+coordinator\s+detail$/m);
  assert.match(text, /^ {2}2\s+published\s+20\s+21\s+22\s+2\s+9\s+-\s+2026-06-08T14:23:00Z\s+1\.4s\s+1\.3\s+0\s+900\s+0\s+c-1\s+-$/m);
  assert.match(text, /^ {2}1\s+rolled_back\s+10\s+11\s+12\s+.*2026-06-08T14:23:00Z \.\. 14:24:00Z.*rollback to run 0$/m);
  assert.match(text, /^ {2}3\s+failed\s+-\s+-\s+-\s.*archiver timed out$/m);
  assert.match(text, /^p<n>: the run's cut on partition n/m);
  const wide = renderRunsTable([runInfo({ run: 1, cuts: cuts(9, 100) })]);
  assert.match(wide, /^run\s+outcome\s+cuts\s+view/m);
  assert.match(wide, / 0:100 1:101 2:102 3:103 4:104 5:105 6:106 7:107 8:108 /);
  assert.match(renderRunsTable([]), /^no batch runs yet/);
  const j = runJson(runs[0]!);
  assert.deepEqual(j.cuts, [{ partition: 0, seq: 20 }, { partition: 1, seq: 21 }, { partition: 2, seq: 22 }]);
  assert.equal(j.durationMs, 1_400);
  assert.equal(j.startedAt, new Date(T0).toISOString());
  assert.deepEqual(j.phases, { barrierMs: 1.25, archiverFlushMs: 0, recomputeMs: 900, publishMs: 0 });
  assert.equal(runJson(runs[2]!).durationMs, null);
});

test("diff: partitions in order with totals, metrics by name", () => {
  const d = diffJson({
    fromRun: 1,
    toRun: 2,
    partitions: [
      { partition: 1, fromCut: 12, toCut: 20, positions: 8, events: 6 },
      { partition: 0, fromCut: 10, toCut: 15, positions: 5, events: 5 },
    ],
    metrics: [
      { metric: "b_metric", keysChanged: 1, windowsChanged: 2 },
      { metric: "a_metric", keysChanged: 3, windowsChanged: 4 },
    ],
  });
  assert.deepEqual(d.partitions.map((p) => p.partition), [0, 1]);
  assert.deepEqual(d.totals, { positions: 13, events: 11 });
  assert.deepEqual(d.metrics.map((m) => m.metric), ["a_metric", "b_metric"]);
  const text = renderDiff(d);
  assert.match(text, /^run 1 -> run 2$/m);
  assert.match(text, /^partition\s+from cut\s+to cut\s+positions\s+events$/m);
  assert.match(text, /^\s+0\s+10\s+15\s+5\s+5$/m);
  assert.match(text, /^total: 13 stream positions, 11 events between the cuts$/m);
  assert.match(text, /^metric\s+keys changed\s+windows changed$/m);
  assert.match(text, /^a_metric\s+3\s+4$/m);
});

function check(p: Partial<PartitionCheck>): PartitionCheck {
  return { partition: 0, cut: 10, belowCut: 9, appliedSeq: 20, aboveCutExpected: 8, aboveCutHeld: 8, gaps: 0, overlaps: 0, ...p };
}

test("verify: exact only when the server says so and nothing is wrong; problems named", () => {
  const good: VerifyResponse = { run: 3, partitions: [check({ partition: 1 }), check({})], batchEventsReported: 18, batchEventsRecounted: 18, exact: true };
  const v = verifyJson(good);
  assert.equal(v.exact, true);
  assert.deepEqual(v.problems, []);
  assert.deepEqual(v.partitions.map((p) => p.partition), [0, 1]);
  assert.match(verdictLine(v), /^exact: every archived event is counted once, in batch view 3/);
  const text = renderVerify(v);
  assert.match(text, /^partition\s+cut\s+below cut\s+applied\s+above expected\s+above held\s+gaps\s+overlaps$/m);
  assert.match(text, /^batch events recounted\s+18$/m);
  assert.ok(text.endsWith(verdictLine(v)));

  const bad: VerifyResponse = { ...good, partitions: [check({ partition: 2, gaps: 3 }), check({ partition: 0, overlaps: 1 })], batchEventsRecounted: 17, exact: false };
  assert.deepEqual(verifyProblems(bad), [
    "partition 0: 1 overlap (events counted twice)",
    "partition 2: 3 gaps (events counted nowhere)",
    "batch run 3 reports 18 events, the recount finds 17",
  ]);
  assert.equal(verdictLine(verifyJson(bad)), `NOT exact: ${verifyProblems(bad).join("; ")}\n`);
  // The server's word and the numbers must agree for "exact".
  assert.equal(verifyJson({ ...good, exact: false }).exact, false);
  assert.deepEqual(verifyJson({ ...good, exact: false }).problems, ["the serving node reports the seam is not exact"]);
  assert.equal(verifyJson({ ...good, partitions: [check({ gaps: 1 })] }).exact, false);
});

const statusReply: GetStatusResponse = {
  members: [
    { role: "speed", id: "s-1", heartbeatAgeS: 0.4, state: "" },
    { role: "serving", id: "v-1", heartbeatAgeS: 1.2, state: "" },
    { role: "coordinator", id: "c-2", heartbeatAgeS: 0.1, state: "standby" },
    { role: "coordinator", id: "c-1", heartbeatAgeS: 0.2, state: "leader" },
    { role: "archiver", id: "a-1", heartbeatAgeS: 0.3, state: "" },
  ],
  partitions: [
    { partition: 1, node: "s-1", generation: 2, streamHead: 40, appliedSeq: 38, archivedSeq: 35, speedLag: 2, archiverLag: 5, speedEventsHeld: 7, speedSkippedInvalid: 3, speedIgnoredBarriers: 0 },
    { partition: 0, node: "", generation: 0, streamHead: 0, appliedSeq: 0, archivedSeq: 0, speedLag: 0, archiverLag: 0, speedEventsHeld: 0, speedSkippedInvalid: 0, speedIgnoredBarriers: 0 },
  ],
  nextRunAt: new Date(T0 + 65_000),
  watermarkRun: 4,
  leader: { id: "c-1", epoch: 3, leaseAgeS: 0.4, leaseS: 5 },
  watermarkRefused: undefined,
};

test("status: members by role then id, partitions in order, the next run relative to now", () => {
  const s = statusJson(statusReply, T0);
  assert.deepEqual(s.members.map((m) => m.id), ["c-1", "c-2", "s-1", "a-1", "v-1"]);
  assert.deepEqual(s.partitions.map((p) => p.partition), [0, 1]);
  assert.equal(s.nextRunAt, new Date(T0 + 65_000).toISOString());
  assert.equal(s.nextRunInMs, 65_000);
  const text = renderStatus(s);
  assert.match(text, /^members\nrole\s+id\s+state\s+heartbeat$/m);
  assert.match(text, /^coordinator\s+c-1\s+leader\s+200ms ago$/m);
  assert.match(text, /^speed\s+s-1\s+-\s+400ms ago$/m);
  assert.match(text, /^partition\s+node\s+generation\s+stream head\s+applied\s+archived\s+speed lag\s+archiver lag\s+held\s+invalid$/m);
  assert.match(text, /^\s+1\s+s-1\s+2\s+40\s+38\s+35\s+2\s+5\s+7\s+3$/m);
  assert.match(text, /^\s+0\s+-\s+0\s+0/m);
  assert.match(text, /^watermark run\s+4$/m);
  assert.deepEqual(s.leader, { id: "c-1", epoch: 3, leaseAgeS: 0.4, leaseS: 5 });
  assert.match(text, /^leader\s+c-1, epoch 3 \(renewed 400ms ago, lease 5\.0s\)$/m);
  const lapsed = renderStatus(statusJson({ ...statusReply, leader: { id: "c-1", epoch: 3, leaseAgeS: 6, leaseS: 5 } }, T0));
  assert.match(lapsed, /^leader\s+c-1, epoch 3: lease lapsed \(renewed 6\.0s ago, lease 5\.0s\); a standby takes over$/m);
  const nobody = statusJson({ ...statusReply, leader: undefined }, T0);
  assert.equal(nobody.leader, null);
  assert.match(renderStatus(nobody), /^leader\s+none \(no coordinator holds the lead/m);
  assert.match(text, /^next run\s+2026-06-08T14:24:05Z \(in 1m 5s\)$/m);
  const none = renderStatus(statusJson({ ...statusReply, nextRunAt: undefined, watermarkRun: 0 }, T0));
  assert.match(none, /^next run\s+none scheduled/m);
  assert.match(none, /^watermark run\s+none yet/m);
  assert.match(renderStatus(statusJson(statusReply, T0 + 70_000)), /\(overdue by 5\.0s\)/);
  assert.equal(s.watermarkRefused, null);
  assert.doesNotMatch(text, /refused watermark|ignored barriers/);
});

test("status: a refused watermark and ignored barriers are shown, with what to do", () => {
  const reply: GetStatusResponse = {
    ...statusReply,
    partitions: statusReply.partitions.map((p) => (p.partition === 1 ? { ...p, speedIgnoredBarriers: 2 } : p)),
    watermarkRefused: { run: 1_000_000, reason: "run 1000000 is not in the run history", at: new Date(T0) },
  };
  const s = statusJson(reply, T0);
  assert.deepEqual(s.watermarkRefused, { run: 1_000_000, reason: "run 1000000 is not in the run history", at: new Date(T0).toISOString() });
  const text = renderStatus(s);
  assert.match(text, /^watermark run\s+4$/m);
  assert.match(text, /^refused watermark\s+run 1000000: run 1000000 is not in the run history; repair with lambdactl watermark rollback <good run>$/m);
  assert.match(text, /^ignored barriers\s+partition 1: 2 \(no batch run wrote them\)$/m);
});

test("status: which archiver holds the lease, read from NATS; archivers' states come from their heartbeats", () => {
  const stream = { messages: 10, bytes: 2048, firstSeq: 1, lastSeq: 10, limits: { maxAgeMs: null, maxBytes: null, maxMsgs: null, maxMsgsPerSubject: null }, retention: null };
  const reply: GetStatusResponse = {
    ...statusReply,
    members: [...statusReply.members.filter((m) => m.role !== "archiver"), { role: "archiver", id: "a-1", heartbeatAgeS: 0.3, state: "holding" }, { role: "archiver", id: "a-2", heartbeatAgeS: 0.2, state: "standby" }],
  };
  const s = statusJson(reply, T0, { stream, archiverLease: { holder: "a-1", epoch: 4, leaseMs: 5_000 } });
  assert.deepEqual(s.archiverLease, { id: "a-1", epoch: 4, leaseS: 5 });
  const text = renderStatus(s);
  assert.match(text, /^archiver lease\s+a-1, epoch 4 \(lease 5\.0s\)$/m);
  assert.match(text, /^archiver\s+a-1\s+holding\s+300ms ago$/m);
  assert.match(text, /^archiver\s+a-2\s+standby\s+200ms ago$/m);
  const released = renderStatus(statusJson(reply, T0, { stream, archiverLease: { holder: "", epoch: 4, leaseMs: 5_000 } }));
  assert.match(released, /^archiver lease\s+released at epoch 4; a standby archiver takes it/m);
  assert.match(renderStatus(statusJson(reply, T0, { stream, archiverLease: null })), /^archiver lease\s+never held/m);
  // Without NATS there is no lease line; the stream line says why.
  const noNats = statusJson(reply, T0, "cannot connect");
  assert.equal(noNats.archiverLease, null);
  assert.doesNotMatch(renderStatus(noNats), /archiver lease/);
});

test("run progress: one line per phase with elapsed time; details compacted; detach names the run", () => {
  assert.equal(phaseLabel("archiver_flush"), "archiver flush");
  assert.equal(progressLine(4, "barrier", '{"run":4}', 12), "   12ms  run 4  barrier\n");
  assert.equal(progressLine(4, "archiver_flush", '{"run":4,"cuts":[10,12,15]}', 1_500), "   1.5s  run 4  archiver flush  cuts=10,12,15\n");
  assert.equal(progressLine(undefined, "failed", "archiver timed out", 2_000), "   2.0s  run ?  failed          archiver timed out\n");
  assert.equal(detailText('{"run":3,"step":"article_views","done":1,"total":12}'), "step=article_views done=1 total=12");
  assert.equal(detailText("plain words"), "plain words");
  assert.equal(detailText("[1,2]"), "[1,2]");
  assert.equal(detailText(""), "");
  assert.equal(detachedLine(7), "detached; run 7 continues on the coordinator\n");
  assert.match(detachedLine(undefined), /^detached before the coordinator named the run; it continues/);
});

test("watch frames: redraw in a terminal, append blocks otherwise; JSON per change", () => {
  const w = watermark({});
  const tty = renderWatchFrame({ present: true, watermark: w }, T0 + 1_000, true);
  assert.ok(tty.startsWith(CLEAR_SCREEN));
  assert.match(tty, /^run\s+2$/m);
  const pipe = renderWatchFrame({ present: true, watermark: w }, T0 + 1_000, false);
  assert.ok(!pipe.includes("\x1b"));
  assert.match(pipe, /^--- 2026-06-08T14:23:01\.000Z: run 2\n/);
  assert.ok(pipe.endsWith("\n\n"));
  assert.match(renderWatchFrame({ present: false, watermark: undefined }, T0, false), /^--- .*: no watermark\nno watermark yet/);
  assert.deepEqual(watermarkJson({ present: false, watermark: w }, T0), { present: false, watermark: null });
  assert.equal(watermarkJson({ present: true, watermark: w }, T0 + 1_000).watermark!.ageMs, 1_000);
});

test("rollback: what it did, then the watermark now", () => {
  const r = { rolledBackFrom: 5, watermark: watermark({ run: 3 }) };
  assert.match(renderRollback(r, T0), /^rolled back from run 5 to run 3; the watermark now:\n\nrun\s+3$/m);
  assert.deepEqual(
    (({ rolledBackFrom, run }) => ({ rolledBackFrom, run }))(rollbackJson(r, T0)),
    { rolledBackFrom: 5, run: 3 },
  );
});

test("timeline data: lanes from the status, runs from the history, current run from the watermark", () => {
  const d = timelineData(statusReply, [runInfo({ run: 4, cuts: [{ partition: 1, seq: 30 }] })], "addr", new Date(T0));
  assert.deepEqual(d.lanes.map((l) => [l.partition, l.streamHead, l.appliedSeq, l.archivedSeq]), [
    [1, 40, 38, 35],
    [0, 0, 0, 0],
  ]);
  assert.deepEqual(d.runs, [{ run: 4, outcome: "published", cuts: [{ partition: 1, seq: 30 }] }]);
  assert.equal(d.currentRun, 4);
});
