/**
 * The operator commands of lambdactl (watermark history, diff, verify,
 * rollback, timeline and --watch; status; run) as an operator runs them: a
 * child process against a real cluster (nats-server + chDB), the numbers
 * checked against what the test ingested, what `runNow` returned and what
 * the stream holds.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { partitionOfKey } from "../../src/core/events.js";
import type { Watermark } from "../../src/core/watermark.js";
import { partitionHeads } from "../../src/nats/setup.js";
import { lambdactl, spawnCli, type CliRun } from "../harness/cli.js";
import { startTestCluster } from "../harness/cluster.js";
import { waitFor } from "../harness/wait.js";

/** Where Debian's `chromium` package puts the browser. */
const CHROMIUM = "/usr/bin/chromium";

/** A lambdactl that keeps running (`--watch`, `run`): its output so far, a signal to send, its end. */
interface LiveCli {
  readonly child: ChildProcessWithoutNullStreams;
  /** Complete stdout lines so far. */
  lines(): string[];
  stderr(): string;
  /** Resolves when it has exited. */
  readonly exited: Promise<CliRun>;
}

function startCli(args: readonly string[], cwd: string): LiveCli {
  const child = spawnCli(args, { cwd });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const exited = new Promise<CliRun>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
  child.stdin.end();
  return { child, lines: () => stdout.split("\n").slice(0, -1), stderr: () => stderr, exited };
}

function parseJson<T>(r: CliRun): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch (err) {
    throw new Error(`lambdactl printed no JSON (exit ${r.code}); stdout: ${r.stdout}\nstderr: ${r.stderr}`, { cause: err });
  }
}

interface CutOut {
  partition: number;
  seq: number;
}
interface HistoryOut {
  runs: { run: number; outcome: string; cuts: CutOut[]; viewVersion: number; eventsCovered: number; startedAt: string; durationMs: number | null; coordinator: string; detail: string }[];
}
interface DiffOut {
  fromRun: number;
  toRun: number;
  partitions: { partition: number; fromCut: number; toCut: number; positions: number; events: number }[];
  totals: { positions: number; events: number };
  metrics: { metric: string; keysChanged: number; windowsChanged: number }[];
}
interface VerifyOut {
  run: number;
  exact: boolean;
  partitions: { partition: number; cut: number; belowCut: number; gaps: number; overlaps: number }[];
  batchEventsReported: number;
  batchEventsRecounted: number;
  problems: string[];
}
interface StatusOut {
  watermarkRun: number;
  nextRunAt: string | null;
  members: { role: string; id: string; state: string; heartbeatAgeS: number }[];
  partitions: { partition: number; node: string; generation: number; streamHead: number; appliedSeq: number; archivedSeq: number; speedLag: number; archiverLag: number }[];
}
interface WatermarkOut {
  present: boolean;
  watermark: { run: number; cuts: CutOut[] } | null;
}

const cutsOf = (w: Watermark): CutOut[] => w.cuts.map((seq, partition) => ({ partition, seq }));

test("lambdactl operator commands against a running cluster", async (t) => {
  const PARTITIONS = 3;
  await using cluster = await startTestCluster({ partitions: PARTITIONS, speedNodes: 1 });
  const dir = mkdtempSync(join(tmpdir(), "lambdactl-admin-"));
  const live: LiveCli[] = [];
  const grpc = ["--grpc", cluster.roles.serving!.address];
  const cli = (...args: string[]) => lambdactl([...args, ...grpc], { cwd: dir });
  const coordinator = cluster.roles.coordinator!;
  try {
    // Two rounds of page views over several articles (so every partition gets some).
    const now = Date.now();
    const round = (tag: string, n: number) =>
      Array.from({ length: n }, (_, i) => ({ id: `${tag}-${i}`, article_id: `a-${i % 7}`, user_id: `u-${i % 4}`, ts: now - 60_000 + i * 1_000 }));
    const first = round("first", 21);
    const second = round("second", 17);
    const perPartition = (events: readonly { article_id: string }[]) =>
      Array.from({ length: PARTITIONS }, (_, p) => events.filter((e) => partitionOfKey(e.article_id, PARTITIONS) === p).length);
    assert.ok(perPartition(second).every((n) => n > 0), "the second round reaches every partition");
    let w1: Watermark | undefined;
    let w2: Watermark | undefined;

    await t.test("before any run: no history, watermark run 0, nothing to verify", async () => {
      const h = await cli("watermark", "history");
      assert.equal(h.code, 0, h.stderr);
      assert.match(h.stdout, /^no batch runs yet/);
      assert.deepEqual(parseJson<HistoryOut>(await cli("watermark", "history", "--json")).runs, []);
      const s = await cli("status", "--json");
      assert.equal(s.code, 0, s.stderr);
      assert.equal(parseJson<StatusOut>(s).watermarkRun, 0);
      // No run was named, so the refusal is a failure (1), not a bad argument (2).
      const v = await cli("watermark", "verify");
      assert.equal(v.code, 1, v.stderr);
      assert.match(v.stderr, /^lambdactl: FAILED_PRECONDITION: /);
    });

    await t.test("history after two runs: both published, one cut per partition as runNow returned", async () => {
      assert.equal((await cluster.ingest.publishBatch("pageviews", first)).accepted, first.length);
      await cluster.waitForSpeedCaughtUp();
      w1 = await coordinator.runNow();
      assert.equal((await cluster.ingest.publishBatch("pageviews", second)).accepted, second.length);
      await cluster.waitForSpeedCaughtUp();
      w2 = await coordinator.runNow();
      assert.deepEqual([w1.run, w2.run], [1, 2]);

      const r = await cli("watermark", "history", "--json");
      assert.equal(r.code, 0, r.stderr);
      const { runs } = parseJson<HistoryOut>(r);
      assert.deepEqual(
        runs.map((x) => [x.run, x.outcome, x.cuts, x.viewVersion, x.eventsCovered]),
        [
          [2, "published", cutsOf(w2), 2, first.length + second.length],
          [1, "published", cutsOf(w1), 1, first.length],
        ],
      );
      for (const x of runs) {
        assert.equal(x.coordinator, w2.coordinator);
        assert.ok(x.durationMs !== null && x.durationMs >= 0);
        assert.ok(!Number.isNaN(Date.parse(x.startedAt)));
      }
      const limited = parseJson<HistoryOut>(await cli("watermark", "history", "--limit", "1", "--json"));
      assert.deepEqual(limited.runs.map((x) => x.run), [2]);

      const text = await cli("watermark", "history");
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^run\s+outcome\s+p0\s+p1\s+p2\s+view\s+events\s+event time\s+started\s+duration\s+barrier ms\s+flush ms\s+recompute ms\s+publish ms\s+coordinator\s+detail$/m);
      for (const w of [w1, w2]) {
        assert.match(text.stdout, new RegExp(`^\\s+${w.run}\\s+published\\s+${w.cuts.join("\\s+")}\\s+${w.run}\\s+${w.eventsCovered}\\s`, "m"));
      }
    });

    await t.test("diff 1 2: per partition the events ingested between the runs; per metric what changed", async () => {
      const r = await cli("watermark", "diff", "1", "2", "--json");
      assert.equal(r.code, 0, r.stderr);
      const d = parseJson<DiffOut>(r);
      assert.deepEqual([d.fromRun, d.toRun], [1, 2]);
      const expected = perPartition(second);
      assert.deepEqual(
        d.partitions.map((p) => [p.partition, p.fromCut, p.toCut, p.events]),
        expected.map((n, p) => [p, w1!.cuts[p], w2!.cuts[p], n]),
      );
      for (const p of d.partitions) assert.ok(p.positions >= p.events, `partition ${p.partition}: positions ${p.positions} < events ${p.events}`);
      assert.equal(d.totals.events, second.length);
      const views = d.metrics.find((m) => m.metric === "article_views");
      assert.ok(views && views.keysChanged > 0 && views.windowsChanged > 0, JSON.stringify(views));

      const text = await cli("watermark", "diff", "1", "2");
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^run 1 -> run 2$/m);
      assert.match(text.stdout, /^partition\s+from cut\s+to cut\s+positions\s+events$/m);
      assert.match(text.stdout, new RegExp(`^total: \\d+ stream positions, ${second.length} events between the cuts$`, "m"));
      assert.match(text.stdout, /^metric\s+keys changed\s+windows changed$/m);
    });

    await t.test("status: stream heads as the stream says, lag = head minus position, members by role", async () => {
      await cluster.waitForSpeedCaughtUp();
      const heads = await partitionHeads(cluster.nc, cluster.names, cluster.cfg.partitions);
      const r = await cli("status", "--json");
      assert.equal(r.code, 0, r.stderr);
      const s = parseJson<StatusOut>(r);
      assert.deepEqual(await partitionHeads(cluster.nc, cluster.names, cluster.cfg.partitions), heads, "nothing wrote to the stream meanwhile");
      assert.deepEqual(s.partitions.map((p) => [p.partition, p.streamHead]), heads.map((h, p) => [p, h]));
      for (const p of s.partitions) {
        assert.equal(p.speedLag, p.streamHead - p.appliedSeq, `partition ${p.partition} speed lag`);
        assert.equal(p.archiverLag, p.streamHead - p.archivedSeq, `partition ${p.partition} archiver lag`);
        assert.ok(p.node.length > 0 && p.generation > 0, `partition ${p.partition} is owned`);
      }
      assert.equal(s.watermarkRun, 2);
      const roles = new Set(s.members.map((m) => m.role));
      for (const role of ["coordinator", "speed"]) assert.ok(roles.has(role), `a ${role} member in ${[...roles].join(", ")}`);
      const text = await cli("status");
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^role\s+id\s+state\s+heartbeat$/m);
      assert.match(text.stdout, /^partition\s+node\s+generation\s+stream head\s+applied\s+archived\s+speed lag\s+archiver lag\s+held\s+invalid$/m);
      assert.match(text.stdout, /^watermark run\s+2$/m);
    });

    await t.test("verify after ingest and two runs: exact, exit 0", async () => {
      const r = await cli("watermark", "verify", "--json");
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const v = parseJson<VerifyOut>(r);
      assert.equal(v.run, 2);
      assert.equal(v.exact, true);
      assert.deepEqual(v.problems, []);
      assert.equal(v.partitions.length, PARTITIONS);
      assert.deepEqual(v.partitions.map((p) => [p.gaps, p.overlaps]), Array.from({ length: PARTITIONS }, () => [0, 0]));
      assert.equal(v.batchEventsRecounted, first.length + second.length);
      const text = await cli("watermark", "verify", "2");
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^partition\s+cut\s+below cut\s+applied\s+above expected\s+above held\s+gaps\s+overlaps$/m);
      assert.match(text.stdout, /\nexact: [^\n]+\n$/);
    });

    await t.test("watch --json prints the watermark, then a line per change; run shows the phases and the next run", async () => {
      const watch = startCli(["watermark", "--watch", "--json", ...grpc], dir);
      live.push(watch);
      const firstLine = await waitFor("the watch's first line", () => watch.lines()[0]);
      assert.deepEqual(
        (({ present, watermark }: WatermarkOut) => ({ present, run: watermark?.run, cuts: watermark?.cuts }))(JSON.parse(firstLine) as WatermarkOut),
        { present: true, run: 2, cuts: cutsOf(w2!) },
      );

      const r = await cli("run");
      assert.equal(r.code, 0, r.stderr);
      for (const phase of ["barrier", "archiver flush", "recompute", "publish", "done"]) {
        assert.match(r.stdout, new RegExp(`^\\s+\\d+(\\.\\d)?m?s\\s+run 3\\s+${phase}\\b`, "m"), phase);
      }
      assert.match(r.stdout, /^run 3 published in \S+; the watermark now:$/m);
      assert.match(r.stdout, /^run\s+3$/m);
      assert.match(r.stdout, /^partition\s+cut seq$/m);

      const changed = await waitFor("the watch's line for run 3", () => watch.lines()[1]);
      const out = JSON.parse(changed) as WatermarkOut;
      assert.equal(out.present, true);
      assert.equal(out.watermark!.run, 3);
      watch.child.kill("SIGINT");
      const end = await watch.exited;
      assert.equal(end.code, 0, end.stderr);
      assert.equal(end.stderr, "");
      assert.equal(end.stdout.trimEnd().split("\n").length, 2, "one line per state, nothing else");
    });

    await t.test("run: Ctrl-C detaches; the run goes on on the coordinator", async () => {
      // Keep the coordinator busy with run 4, so the command's run (5) waits behind it.
      const busy = coordinator.runNow();
      const requests: number[] = [];
      const sub = cluster.nc.subscribe(cluster.names.runNowSubject, { callback: () => void requests.push(Date.now()) });
      try {
        const run = startCli(["run", ...grpc], dir);
        live.push(run);
        await waitFor("the serving node to ask the coordinator for a run", () => requests.length > 0);
        run.child.kill("SIGINT");
        const end = await run.exited;
        assert.equal(end.code, 0, end.stderr);
        assert.match(end.stdout, /^detached(; run 5| before the coordinator named the run;?) .*continues on the coordinator/m);
      } finally {
        sub.unsubscribe();
      }
      assert.equal((await busy).run, 4);
      await waitFor("run 5 to publish after the client detached", async () => {
        const h = parseJson<HistoryOut>(await cli("watermark", "history", "--json"));
        return h.runs.find((x) => x.run === 5 && x.outcome === "published");
      });
    });

    await t.test("rollback, then history shows it; the next run moves forward and the seam stays exact", async () => {
      const r = await cli("watermark", "rollback", "3");
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^rolled back from run 5 to run 3; the watermark now:$/m);
      assert.match(r.stdout, /^run\s+3$/m);
      const w = parseJson<WatermarkOut>(await cli("watermark", "--json"));
      assert.equal(w.watermark!.run, 3);
      const h = parseJson<HistoryOut>(await cli("watermark", "history", "--json"));
      assert.deepEqual(
        h.runs.map((x) => [x.run, x.outcome]),
        [
          [5, "rolled_back"],
          [4, "rolled_back"],
          [3, "published"],
          [2, "published"],
          [1, "published"],
        ],
      );
      assert.ok(h.runs[0]!.detail.length > 0, "a rolled back run says by what");
      const text = await cli("watermark", "history");
      assert.match(text.stdout, /^\s+5\s+rolled_back\s/m);

      const next = await coordinator.runNow();
      assert.equal(next.run, 6);
      const after = parseJson<HistoryOut>(await cli("watermark", "history", "--limit", "1", "--json"));
      assert.deepEqual(after.runs.map((x) => [x.run, x.outcome]), [[6, "published"]]);
      await cluster.waitForSpeedCaughtUp();
      const v = await waitFor("the seam at run 6 to be exact", async () => {
        const x = await cli("watermark", "verify", "--json");
        return x.code === 0 ? parseJson<VerifyOut>(x) : undefined;
      });
      assert.equal(v.run, 6);
    });

    await t.test("bad arguments: exit 2 with the message, local or the server's", async () => {
      const cases: [string[], RegExp][] = [
        [["watermark", "diff", "1", "99"], /^lambdactl watermark diff: [A-Z_]+: .*99/],
        [["watermark", "diff", "2", "1"], /^lambdactl watermark diff: <from> must not be after <to> \(from 2, to 1\)/],
        [["watermark", "diff", "3", "x"], /^lambdactl watermark diff: <to>: expected a run number .*got "x"/],
        [["watermark", "diff", "1"], /missing argument <to>/],
        [["watermark", "rollback", "99"], /^lambdactl watermark rollback: [A-Z_]+: .*99/],
        [["watermark", "rollback", "6"], /^lambdactl watermark rollback: [A-Z_]+: /],
        [["watermark", "rollback", "0"], /<run>: expected a run number .*got "0"/],
        [["watermark", "verify", "99"], /^lambdactl watermark verify: [A-Z_]+: .*99/],
        [["watermark", "verify", "-1"], /unknown flag -1|expected a run number/],
        [["watermark", "history", "--limit", "0"], /--limit: expected a positive integer, got "0"/],
        [["watermark", "histroy"], /unknown subcommand "histroy"; watermark takes history, diff, verify, rollback, timeline/],
        [["watermark", "timeline"], /missing flag --out <file\.svg>/],
        [["status", "extra"], /unexpected argument "extra"/],
        [["run", "--bogus"], /unknown flag --bogus/],
      ];
      for (const [args, message] of cases) {
        const r = await cli(...args);
        assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
        assert.match(r.stderr, message, args.join(" "));
        assert.equal(r.stdout, "", args.join(" "));
      }
    });

    const svgFile = join(dir, "timeline.svg");
    const timelineRuns = [1, 2, 3, 4, 5, 6];
    await t.test("timeline: an SVG with each run's cut on every partition, the current one highlighted", async () => {
      const r = await cli("watermark", "timeline", "--out", "timeline.svg", "--limit", "10", "--json");
      assert.equal(r.code, 0, r.stderr);
      const summary = parseJson<{ out: string; partitions: number; runs: number[]; currentRun: number }>(r);
      assert.deepEqual(summary, { out: svgFile, partitions: PARTITIONS, runs: timelineRuns, currentRun: 6 });
      const svg = readFileSync(svgFile, "utf8");
      assert.ok(svg.startsWith("<?xml") && svg.trimEnd().endsWith("</svg>"));
      for (const run of summary.runs) {
        assert.equal(svg.split(`data-run="${run}"`).length - 1, PARTITIONS, `run ${run}: a cut mark per partition`);
      }
      assert.equal([...svg.matchAll(/class="cut current[^"]*" data-run="(\d+)"/g)].filter((m) => m[1] === "6").length, PARTITIONS, "the current cut highlighted on every lane");
      const text = await cli("watermark", "timeline", "--out", svgFile);
      assert.match(text.stdout, new RegExp(`^wrote ${svgFile.replaceAll(".", "\\.")}: ${PARTITIONS} partitions, 6 runs \\(1, 2, 3, 4, 5, 6\\), current run 6$`, "m"));
    });

    await t.test("timeline: renders in headless Chromium, with a label per run in the DOM", async (t) => {
      if (!existsSync(CHROMIUM)) {
        t.skip("chromium not installed: apt-get install chromium");
        return;
      }
      const chromium = (args: readonly string[]) =>
        new Promise<string>((resolve, reject) => {
          const profile = mkdtempSync(join(dir, "chromium-"));
          execFile(
            CHROMIUM,
            ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", `--user-data-dir=${profile}`, ...args],
            { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
            (err, stdout, stderr) => (err ? reject(new Error(`chromium failed: ${stderr}`, { cause: err })) : resolve(stdout)),
          );
        });
      const svg = readFileSync(svgFile, "utf8");
      const png = join(dir, "t.png");
      await chromium([`--screenshot=${png}`, "--window-size=1200,600", pathToFileURL(svgFile).href]);
      assert.ok(existsSync(png), "chromium wrote the screenshot");
      const bytes = readFileSync(png);
      assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "a PNG");
      assert.ok(statSync(png).size > 10_000, `a picture, not a blank page (${statSync(png).size} bytes)`);
      // The same SVG inline in a page: the browser's DOM holds a labelled mark per run.
      const page = join(dir, "timeline.html");
      writeFileSync(page, `<!doctype html><html><body>${svg.replace(/^<\?xml[^>]*>\s*/, "")}</body></html>`);
      const dom = await chromium(["--dump-dom", pathToFileURL(page).href]);
      for (const run of timelineRuns) {
        assert.match(dom, new RegExp(`<g class="cut[^"]*" data-run="${run}"[^>]*>.*?<text [^>]*>${run}</text>`, "s"), `run ${run} labelled in the DOM`);
      }
      assert.match(dom, /class="cut current[^"]*" data-run="6"/);
    });

    await t.test("help lists the new commands", async () => {
      const overview = await lambdactl(["--help"], { cwd: dir });
      assert.equal(overview.code, 0);
      for (const c of ["watermark", "watermark history", "watermark diff", "watermark verify", "watermark rollback", "watermark timeline", "status", "run"]) {
        assert.match(overview.stdout, new RegExp(`^ {2}${c} `, "m"), c);
      }
      const history = await lambdactl(["watermark", "history", "--help"], { cwd: dir });
      assert.equal(history.code, 0);
      assert.match(history.stdout, /^usage: lambdactl watermark history \[flags\]$/m);
      assert.match(history.stdout, /^ {2}--limit <n> /m);
      const wm = await lambdactl(["help", "watermark"], { cwd: dir });
      assert.match(wm.stdout, /^ {7}lambdactl watermark diff <from> <to> \[flags\]$/m);
      assert.match(wm.stdout, /^ {2}-w, --watch /m);
    });
  } finally {
    for (const l of live) if (l.child.exitCode === null && l.child.signalCode === null) l.child.kill("SIGKILL");
    await Promise.all(live.map((l) => l.exited.catch(() => undefined))); // best effort: the children are gone either way
    rmSync(dir, { recursive: true, force: true });
  }
});
