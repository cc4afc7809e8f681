/**
 * The faults, each made from outside the runtime the way it happens to an
 * operator: a signal to a process, a NATS node killed, paused or restarted, a
 * clock skewed, records written past ingest. inject() makes the fault and
 * returns how to heal it (after the fault's own hold time where it has one).
 */
import { execFile, execFileSync, fork } from "node:child_process";
import { existsSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { jetstream } from "@nats-io/jetstream";
import { pack } from "msgpackr";
import { FaultFiles } from "../src/ch/insert_fault.js";
import { partitionOfKey } from "../src/core/events.js";
import { waitFor } from "../src/core/wait.js";
import type { FaultCluster, StoreDisks } from "./cluster.js";
import { FAULT_TIMINGS, PARTITIONS } from "./cluster.js";
import { EVENT_SPAN_MS, KEYS, T0, type Ledger } from "./ledger.js";
import { netLabUnavailable, type LabHost } from "./netlab.js";

export interface FaultContext {
  readonly rand: () => number;
  /** CI's short form: shorter holds. */
  readonly quick: boolean;
  readonly ledger: Ledger;
  /** A directory of this run's own, for files a fault and its roles share. */
  readonly scratch: string;
}

export interface Injected {
  /** What was hit, for the report. */
  readonly target: string;
  /** Heals the fault; returns what it saw on the way that the report should say (or nothing). */
  heal(): Promise<string | void>;
  /** Invariants of the fault's own that it found broken (e.g. F18: verify hid an overlap). */
  readonly problems?: string[];
}

export interface Fault {
  readonly id: string;
  readonly title: string;
  /** Settings every role starts with for this fault (LAMBDA_* variables), given the run's scratch directory. */
  env?(scratch: string): Record<string, string>;
  /** Why the fault cannot be made on this machine, or undefined when it can. */
  cannotRun?(): string | undefined;
  /** Runs the cluster on a lab network (NATS nodes and coordinators in namespaces of their own) so that links can be cut. */
  readonly network?: boolean;
  /** Puts stores on small file systems of their own, to fill. */
  readonly disks?: StoreDisks;
  inject(c: FaultCluster, ctx: FaultContext): Promise<Injected>;
}

const pick = <T>(xs: readonly T[], rand: () => number): T => xs[Math.floor(rand() * xs.length)]!;
const hold = (ms: number) => new Promise((r) => setTimeout(r, ms));

function signal(pid: number, s: NodeJS.Signals): void {
  try {
    process.kill(pid, s);
  } catch {
    // already gone: nothing to signal
  }
}

/** Kills role process `nodeId` and heals by starting it again under the same id. */
async function killRole(c: FaultCluster, nodeId: string): Promise<Injected> {
  await c.processes.get(nodeId)!.kill();
  return { target: nodeId, heal: async () => void (await c.restart(nodeId)) };
}


const LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
const REPO = new URL("../..", import.meta.url).pathname;
/** F5's producer process gets this many events and is killed after 50..350 acknowledgements: most are in flight or unsent. */
const F5_EVENTS = 3_000;
/** F13, F14: the sizes of the file systems filled. */
const F13_CHDB_DISK_MB = 256;
const F14_NATS_DISK_MB = 128;
/** F18's settings: a duplicate window and a speed dedupe horizon a test can outwait, and runs far enough apart to see the overlap. */
const F18_DUPLICATE_WINDOW_MS = 2_000;
const F18_BATCH_INTERVAL_MS = 10_000;

/** F5: hands `n` new events to a producer process and SIGKILLs it once it has seen `killAtAcks` acknowledgements; returns the ids handed and the acks it saw. */
async function producerKilledMidway(c: FaultCluster, ledger: Ledger, n: number, killAtAcks: number): Promise<{ handed: string[]; acked: number }> {
  const events = ledger.handOff(n);
  const child = fork(join(REPO, "dist/faults/producer_process.js"), [], { env: { PATH: process.env.PATH ?? "", ...c.env }, stdio: ["pipe", "pipe", "inherit", "ipc"] });
  const exited = new Promise((r) => child.once("exit", r));
  let acked = 0;
  let reached: () => void = () => {};
  const killNow = new Promise<void>((r) => (reached = r));
  const lines = (async () => {
    for await (const line of createInterface({ input: child.stdout! })) {
      const [word, id, partition, seq, dup] = line.split(" ");
      if (word !== "acked" || !id) continue;
      ledger.markAcked(id, dup ? undefined : { partition: Number(partition), seq: Number(seq) });
      if (++acked >= killAtAcks) reached();
    }
  })();
  child.stdin!.end(events.map((e) => JSON.stringify(e)).join("\n") + "\n");
  // Killed mid-stream: publishes in flight whose acks the client never reads.
  await Promise.race([killNow, exited, new Promise((r) => setTimeout(r, 30_000))]);
  child.kill("SIGKILL");
  await exited;
  await lines;
  return { handed: events.map((e) => e.id), acked };
}

/** `lambdactl watermark verify --json` against the fault cluster's serving node: the operator's view of the seam. */
function lambdactlVerify(c: FaultCluster): Promise<{ run: number; partitions: { partition: number; cut: number; appliedSeq: number; overlaps: number }[] }> {
  return new Promise((resolve, reject) =>
    execFile(process.execPath, [join(REPO, "dist/src/cli/lambdactl.js"), "watermark", "verify", "--json", "--grpc", c.grpcAddress()], { timeout: 60_000 }, (err, stdout, stderr) => {
      // NOT exact exits non-zero with the JSON on stdout; anything else is a failure of the call.
      try {
        resolve(JSON.parse(stdout));
      } catch {
        reject(new Error(`lambdactl watermark verify failed: ${err?.message ?? ""} ${stderr}`));
      }
    }),
  );
}

/** Records that never went through ingest, one of each kind of damage, with ids and keys the checker would count. */
function poisonRecords(rand: () => number): { p: number; data: Uint8Array; why: string }[] {
  const key = pick(KEYS, rand);
  const home = partitionOfKey(key, PARTITIONS);
  const ts = T0 + Math.floor(rand() * EVENT_SPAN_MS);
  const event = (id: string, extra: Record<string, unknown>) => pack({ k: "e", s: "pageviews", id, ts, v: { article_id: key, user_id: "u-poison" }, ...extra });
  const n = Math.floor(rand() * 1e9);
  return [
    { p: home, data: new Uint8Array([0xc1, 0x00, 0xff]), why: "not msgpack" },
    { p: home, data: pack("a string"), why: "a msgpack string" },
    { p: home, data: pack([1, 2, 3]), why: "a msgpack array" },
    { p: home, data: event(`poison-ts-text-${n}`, { ts: "yesterday" }), why: "time as text" },
    { p: home, data: event(`poison-ts-inf-${n}`, { ts: Number.POSITIVE_INFINITY }), why: "time Infinity" },
    { p: home, data: event(`poison-ts-nan-${n}`, { ts: Number.NaN }), why: "time NaN" },
    { p: home, data: event(`poison-key-type-${n}`, { v: { article_id: 42, user_id: "u-poison" } }), why: "key of the wrong type" },
    { p: home, data: event(`poison-no-fields-${n}`, { v: undefined }), why: "no fields" },
    { p: home, data: event(`poison-source-${n}`, { s: "no-such-source" }), why: "unknown source" },
    { p: home, data: pack({ k: "x", id: `poison-kind-${n}` }), why: "unknown record kind" },
    { p: (home + 1) % PARTITIONS, data: event(`poison-partition-${n}`, {}), why: "a valid event on another partition than its key's" },
  ];
}

/** Fills the file system holding `dir` to the last byte with one file; returns its path. */
function fillDisk(dir: string): string {
  const file = join(dir, "filler");
  // dd writes until the disk refuses (ENOSPC, its exit status 1): in MiB, then the last KiBs.
  for (const bs of ["1M", "4k"]) {
    try {
      execFileSync("dd", ["if=/dev/zero", `of=${file}`, `bs=${bs}`, "oflag=append", "conv=notrunc"], { stdio: "ignore" });
    } catch {
      // full: what was expected
    }
  }
  return file;
}

/** Why stores cannot be put on a tmpfs here, or undefined when they can. */
const tmpfsUnavailable = () => (process.getuid?.() === 0 ? undefined : "mounting a tmpfs needs root");

/** Cuts `host` off for `holdMs`, then reconnects it. */
function cutOff(host: LabHost, holdMs: number): Injected {
  host.cut();
  return {
    target: `${host.name} (${host.ip}) cut off for ${Math.round(holdMs / 1000)} s`,
    async heal() {
      await hold(holdMs);
      host.reconnect();
    },
  };
}

/** Every fault of the matrix, in order of its id. */
export const FAULTS: readonly Fault[] = [
  {
    id: "F1",
    title: "SIGKILL a speed node mid-segment",
    inject: (c, { rand }) => killRole(c, pick([...c.processes.keys()].filter((k) => k.startsWith("speed")), rand)),
  },
  {
    id: "F2",
    title: "SIGKILL the archiver's process (archiver, executor, serving; chDB embedded) between a master insert and its progress write",
    env: (scratch) => ({ LAMBDA_FAULT_DIR: scratch }),
    async inject(c, { scratch }) {
      // The ClickHouse adapter's seam kills the process as soon as the next master insert returns.
      const file = join(scratch, FaultFiles.killAfterInsert);
      writeFileSync(file, "F2\n");
      const main = c.processes.get("main")!;
      const how = await Promise.race([main.exited, hold(30_000).then(() => "still running after 30 s")]);
      unlinkSync(file);
      if (how !== "SIGKILL") throw new Error(`main was to kill itself after a master insert; it ${how === "still running after 30 s" ? "did not" : `exited with ${how}`}`);
      return { target: "main, right after a master insert", heal: async () => void (await c.restart("main")) };
    },
  },
  {
    id: "F3",
    title: "SIGKILL the leader coordinator (runs every 2 s: usually mid-run)",
    inject: async (c) => killRole(c, (await c.leader()).nodeId),
  },
  {
    id: "F4",
    title: "SIGSTOP the leader coordinator past its lease, then SIGCONT (zombie)",
    async inject(c) {
      const leader = await c.leader();
      signal(leader.pid, "SIGSTOP");
      return {
        target: leader.nodeId,
        async heal() {
          await hold(2 * FAULT_TIMINGS.leaderLeaseMs);
          signal(leader.pid, "SIGCONT");
        },
      };
    },
  },
  {
    id: "F5",
    title: "SIGKILL an ingest process before its client sees every ack; the client retries the same ids",
    async inject(c, { ledger, rand }) {
      const { handed, acked } = await producerKilledMidway(c, ledger, F5_EVENTS, 50 + Math.floor(rand() * 300));
      return {
        target: `producer process: ${acked} of ${handed.length} acks seen`,
        async heal() {
          // The client's retry: every handed-off event it saw no ack for, same id, until acknowledged.
          const pending = ledger.unacked().filter((e) => handed.includes(e.id));
          const until = Date.now() + 60_000;
          const landed = (await Promise.all(pending.map((e) => ledger.retry(c.ingest, e, () => Date.now() < until)))).filter((dup) => dup === true).length;
          return `${pending.length} retried, ${landed} of them had landed (the stream said duplicate)`;
        },
      };
    },
  },
  {
    id: "F6",
    title: "SIGKILL a serving node under query load",
    // Said, not faked: killing "main" (F2) kills this cluster's only serving node with the archiver.
    cannotRun: () =>
      "serving reads the batch views, and embedded chDB holds them in the one process that owns its directory, so a second serving node needs a ClickHouse server; " +
      "none can be installed here (Debian's clickhouse-server is 18.16, from 2018, without the query parameters the runtime sends)",
    inject: () => Promise.reject(new Error("F6 cannot be made here")),
  },
  {
    id: "F7",
    title: "SIGKILL the NATS node that leads the event stream, restart it",
    async inject(c) {
      const node = await c.streamLeader();
      await node.kill("SIGKILL");
      return {
        target: node.name,
        async heal() {
          await hold(3_000);
          await node.restart();
        },
      };
    },
  },
  {
    id: "F8",
    title: "hard-bounce the event stream's leader node 5 times in a row (SIGKILL, restart at once)",
    async inject(c, { quick }) {
      const bounced: string[] = [];
      for (let i = 0; i < (quick ? 2 : 5); i++) {
        const node = await waitFor("an event stream leader", () => c.streamLeader().catch(() => undefined), { timeoutMs: 30_000, intervalMs: 100 });
        await node.kill("SIGKILL");
        await node.restart();
        bounced.push(node.name);
      }
      return { target: bounced.join(" "), heal: async () => undefined };
    },
  },
  {
    id: "F9",
    title: "isolate one NATS node (half the time the event stream's leader) from everything for 30 s",
    network: true,
    cannotRun: netLabUnavailable,
    async inject(c, { rand, quick }) {
      const node = rand() < 0.5 ? await c.streamLeader() : pick(c.nats.nodes, rand);
      return cutOff(c.hosts!.get(node.name)!, quick ? 10_000 : 30_000);
    },
  },
  {
    id: "F10",
    title: "cut the leader coordinator off from NATS (every node, so from the majority too) past its lease",
    network: true,
    cannotRun: netLabUnavailable,
    async inject(c, { quick }) {
      const leader = await c.leader();
      return cutOff(c.hosts!.get(leader.nodeId)!, (quick ? 4 : 8) * FAULT_TIMINGS.leaderLeaseMs);
    },
  },
  {
    id: "F11",
    title: "100 ms ± 50 ms delay on one NATS node (tc netem)",
    cannotRun: () => "this machine's kernel has no queueing disciplines (`tc qdisc add dev lo root netem delay 100ms` and even `prio` say \"Specified qdisc kind is unknown\"; it boots with `nomodule`), so tc netem cannot delay anything here",
    inject: () => Promise.reject(new Error("F11 cannot be made here")),
  },
  {
    id: "F12",
    title: "SIGSTOP the NATS node that leads the event stream for 10 s",
    async inject(c, { quick }) {
      const node = await c.streamLeader();
      await node.kill("SIGSTOP");
      return {
        target: node.name,
        async heal() {
          await hold(quick ? 5_000 : 10_000);
          await node.kill("SIGCONT");
        },
      };
    },
  },
  {
    id: "F13",
    title: "fill the chDB data directory's disk (a 256 MiB tmpfs) to the last byte, free it again",
    disks: { chdbMb: F13_CHDB_DISK_MB },
    env: () => ({ LAMBDA_CHDB_MIN_FREE_MB: "16" }),
    cannotRun: tmpfsUnavailable,
    async inject(c, { quick }) {
      const filler = fillDisk(c.chdbPath);
      return {
        target: `main's chDB disk full for ${quick ? 5 : 10} s`,
        async heal() {
          await hold(quick ? 5_000 : 10_000);
          rmSync(filler);
        },
      };
    },
  },
  {
    id: "F14",
    title: "fill one NATS node's store disk (a 128 MiB tmpfs; half the time the event stream leader's), free it",
    disks: { natsMb: F14_NATS_DISK_MB },
    cannotRun: tmpfsUnavailable,
    async inject(c, { rand, quick }) {
      const node = rand() < 0.5 ? await c.streamLeader() : pick(c.nats.nodes, rand);
      const filler = fillDisk(node.storeDir);
      return {
        target: `${node.name}'s store disk full for ${quick ? 5 : 10} s`,
        async heal() {
          await hold(quick ? 5_000 : 10_000);
          rmSync(filler);
          // nats-server 2.9 does not recover from a full store by itself (its storage locks up and
          // it ignores SIGTERM): what an operator does is kill it and start it again.
          await node.kill("SIGKILL");
          await node.restart();
          return "then SIGKILLed and restarted (it does not recover by itself)";
        },
      };
    },
  },
  {
    id: "F15",
    title: "skew one coordinator's clock by ±5 minutes (libfaketime) and make it the leader",
    cannotRun: () => (existsSync(LIBFAKETIME) ? undefined : `${LIBFAKETIME} not found: apt-get install faketime`),
    async inject(c, { rand, quick }) {
      const leader = await c.leader();
      const skewed = [...c.processes.keys()].find((k) => k.startsWith("coord") && k !== leader.nodeId)!;
      const offset = rand() < 0.5 ? "-5m" : "+5m";
      await c.processes.get(skewed)!.kill();
      await c.restart(skewed, { LD_PRELOAD: LIBFAKETIME, FAKETIME: offset });
      // The leader goes; the skewed standby must take over on its lease, then lead with its clock off.
      const killed = await killRole(c, leader.nodeId);
      await waitFor(`${skewed} (clock ${offset}) to lead`, async () => (await c.leader().catch(() => undefined))?.nodeId === skewed, { timeoutMs: 30_000, intervalMs: 100 });
      await killed.heal();
      return {
        target: `${skewed} at ${offset}`,
        async heal() {
          await hold((quick ? 3 : 6) * FAULT_TIMINGS.batchIntervalMs);
          await c.processes.get(skewed)!.kill();
          await c.restart(skewed);
        },
      };
    },
  },
  {
    id: "F16",
    title: "SIGSTOP a speed node longer than the node timeout and any ack wait, then SIGCONT",
    async inject(c, { rand }) {
      const id = pick([...c.processes.keys()].filter((k) => k.startsWith("speed")), rand);
      const node = c.processes.get(id)!;
      signal(node.pid, "SIGSTOP");
      return {
        target: id,
        async heal() {
          await hold(4 * FAULT_TIMINGS.nodeTimeoutMs);
          signal(node.pid, "SIGCONT");
        },
      };
    },
  },
  {
    id: "F17",
    title: "ClickHouse fails every insert for a while (the client adapter's fault seam)",
    env: (scratch) => ({ LAMBDA_FAULT_DIR: scratch }),
    async inject(_c, { scratch, quick }) {
      const file = join(scratch, FaultFiles.insertsFail);
      writeFileSync(file, "F17\n");
      return {
        target: "main (archiver and batch inserts)",
        async heal() {
          await hold(quick ? 4_000 : 10_000);
          unlinkSync(file);
        },
      };
    },
  },
  {
    id: "F18",
    title: "republish an old event after the duplicate window and the speed dedupe horizon",
    env: () => ({ LAMBDA_DUPLICATE_WINDOW_MS: String(F18_DUPLICATE_WINDOW_MS), LAMBDA_DEDUPE_HORIZON_IDS: "20", LAMBDA_BATCH_INTERVAL_MS: String(F18_BATCH_INTERVAL_MS) }),
    async inject(c, { ledger }) {
      const old = await waitFor("an event acknowledged longer ago than the duplicate window", () => {
        const o = ledger.oldestAcked();
        return o && performance.now() - o.ackedAt > F18_DUPLICATE_WINDOW_MS + 500 && o;
      }, { timeoutMs: 30_000, intervalMs: 100 });
      const copy = await c.ingest.publish("pageviews", old.e);
      if (copy.duplicate) throw new Error(`the stream still deduplicated ${old.e.id} after the duplicate window`);
      ledger.addCopy(old.e.id);
      const problems: string[] = [];
      // Until the next run, batch counts the original and the speed actor the copy: verify must say so.
      const v = await waitFor(`the speed actor of partition ${copy.partition} to apply the copy at ${copy.seq}`, async () => {
        const r = await lambdactlVerify(c);
        return r.partitions[copy.partition]!.appliedSeq >= copy.seq && r;
      }, { timeoutMs: 30_000, intervalMs: 200 });
      const part = v.partitions[copy.partition]!;
      const seen = part.cut <= copy.seq && old.seq < part.cut;
      if (seen && part.overlaps < 1) problems.push(`F18: lambdactl watermark verify showed no overlap in partition ${copy.partition} at run ${v.run} (cut ${part.cut}) though ${old.e.id} lies at ${old.seq} and its copy at ${copy.seq}`);
      return {
        target: `${old.e.id} again at ${copy.partition}/${copy.seq}: verify ${seen ? `showed ${part.overlaps} overlap(s) at run ${v.run}` : `ran after run ${v.run} covered the copy`}`,
        problems,
        heal: async () => undefined,
      };
    },
  },
  {
    id: "F19",
    title: "records that bypass ingest (not msgpack, bad time, Infinity, wrong types, wrong partition) written onto partition subjects under load",
    async inject(c, { rand }) {
      const js = jetstream(c.nc);
      const kinds = new Set<string>();
      let written = 0;
      for (let round = 0; round < 3; round++) {
        for (const r of poisonRecords(rand)) {
          await js.publish(c.names.eventSubject(r.p), r.data);
          kinds.add(r.why);
          written++;
        }
        await hold(500);
      }
      return { target: `${written} records of ${kinds.size} kinds`, heal: async () => undefined };
    },
  },
  {
    id: "F20",
    title: "restart a nats-server (SIGTERM, start again) under load",
    async inject(c, { rand }) {
      const node = pick(c.nats.nodes, rand);
      await node.kill("SIGTERM");
      return { target: node.name, heal: () => node.restart() };
    },
  },
];
