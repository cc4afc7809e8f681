/**
 * `lambdactl status`: the cluster as the coordinator sees it: its members
 * (coordinator leader and standbys, speed nodes, archiver, serving nodes) with
 * their heartbeat age; each partition's owner and generation, stream head,
 * the speed actor's applied position and the archiver's flushed position, and
 * the lag of each behind the head; the current watermark's run and the next
 * scheduled batch run; and, read from NATS, the event stream's size, what
 * stream retention let go after the last run and lets go after the next, and
 * which archiver holds the archiver lease.
 */
import { booleanFlag, COMMON_FLAGS, ADMIN_GRPC_FLAGS, NATS_FLAGS, connectionFlags, timeoutMs, grpcTarget } from "../args.js";
import { resolveNatsTarget } from "../connection.js";
import { readClusterNats, type ClusterNatsState } from "../nats.js";
import { ensureError } from "../../core/errors.js";
import type { StreamReport } from "../../nats/stream_retention.js";
import { createAdminClient } from "../admin_grpc.js";
import { ExitCodes, type CliContext, type Command, type CommandSpec, type ExitCode, type ParsedCommand } from "../command.js";
import { ABSENT, formatElapsed, formatInstant, keyValues, table } from "../render.js";
import type { GetStatusResponse, Member } from "../../gen/lambda/v1/admin.js";

const spec: CommandSpec = {
  name: "status",
  summary: "members and heartbeats, partition owners and lag, the watermark run and the next run",
  args: [],
  flags: { ...ADMIN_GRPC_FLAGS, "nats-url": NATS_FLAGS["nats-url"], prefix: NATS_FLAGS.prefix, ...COMMON_FLAGS },
  notes: [
    "partitions: stream head is the partition's last stream sequence; applied is the speed actor's",
    "position, archived the archiver's flushed one; speed lag and archiver lag are the head minus",
    "each; held is the events the speed actor holds above the watermark's cut.",
    "members: a member whose heartbeat is older than the node timeout (LAMBDA_NODE_TIMEOUT_MS)",
    "is shown as gone, whatever it last said (a killed coordinator's last beat says leader);",
    "the coordinator drops it after 12 node timeouts. A live coordinator is the leader only if",
    "the leadership key names it and its lease holds, else a standby. Ages are by the NATS",
    "server's clock.",
    "watermark run: the run the serving node answers at. refused watermark (shown only then): a",
    "newer value of the watermark key that no batch run published; repair it with",
    "lambdactl watermark rollback <good run>. ignored barriers (shown only then): barriers no",
    "batch run wrote, passed over by the partition's speed actor (and the archiver).",
    "leader: the leadership key: the coordinator, its fencing epoch, and how long ago it renewed",
    "its lease; past the lease (LAMBDA_LEADER_LEASE_MS) a standby takes over.",
    "stream (read from NATS: --nats-url, else LAMBDA_NATS_URL, else the local cluster file): the",
    "event stream's messages and bytes; retention: what the coordinator purged after the last run",
    "(LAMBDA_STREAM_RETENTION) and what the next run frees if it publishes (bytes estimated at the",
    "stream's mean message size). Without NATS the stream lines say why they are missing.",
    "archiver lease (read from NATS too): the archiver that writes the master dataset and its",
    "fencing epoch; other archivers stand by (their state in members) and take over once its lease",
    "(LAMBDA_ARCHIVER_LEASE_MS) lapses. An archiver in state lapsed has not renewed it in time and",
    "inserts nothing until it does.",
    "",
    "examples:",
    "  lambdactl status",
    "  lambdactl status --json | jq '.partitions[] | .speedLag'",
  ].join("\n"),
};

/** The stable JSON shape of `status --json`. */
export interface StatusJson {
  /** The current watermark's run; 0 before the first batch run. */
  readonly watermarkRun: number;
  /** ISO 8601; null when no run is scheduled (runs on demand only). */
  readonly nextRunAt: string | null;
  /** Milliseconds from the time lambdactl asked to the next run (negative when overdue); null when none. */
  readonly nextRunInMs: number | null;
  /** The leadership key; null when no coordinator holds the lead. */
  readonly leader: {
    readonly id: string;
    readonly epoch: number;
    /** Seconds since the leader renewed its lease, by the NATS server's clock. */
    readonly leaseAgeS: number;
    readonly leaseS: number;
  } | null;
  /** Ordered by role (coordinator, executor, speed, archiver, serving, others), then id. */
  readonly members: readonly {
    readonly role: string;
    readonly id: string;
    /**
     * "gone" for a member whose heartbeat is older than the node timeout (LAMBDA_NODE_TIMEOUT_MS;
     * the coordinator drops its key after 12 timeouts); otherwise "leader" or "standby" for a
     * coordinator (as the leadership key says), "" for others.
     */
    readonly state: string;
    readonly heartbeatAgeS: number;
  }[];
  /** By partition. */
  readonly partitions: readonly {
    readonly partition: number;
    readonly node: string;
    readonly generation: number;
    readonly streamHead: number;
    readonly appliedSeq: number;
    readonly archivedSeq: number;
    readonly speedLag: number;
    readonly archiverLag: number;
    readonly speedEventsHeld: number;
    readonly speedSkippedInvalid: number;
    /** Barriers the actor passed over since it started because no batch run wrote them. */
    readonly speedIgnoredBarriers: number;
  }[];
  /**
   * The newest watermark value the serving node refused to answer at (no batch run published it,
   * or its batch views are missing there); null when it answers at the newest. `watermarkRun` is
   * then the last good run. Repair: `lambdactl watermark rollback <good run>`.
   */
  readonly watermarkRefused: { readonly run: number; readonly reason: string; readonly at: string | null } | null;
  /** The event stream and its retention, read from NATS; null when it could not be read (`streamProblem` says why). */
  readonly stream: StreamJson | null;
  readonly streamProblem: string | null;
  /**
   * The archiver lease, read from NATS: who writes the master dataset (id "" once its holder released it
   * on a clean stop), its fencing epoch and lease length. null when no archiver ever held it or NATS
   * could not be read (`streamProblem` says why).
   */
  readonly archiverLease: { readonly id: string; readonly epoch: number; readonly leaseS: number } | null;
}

/** The event stream in `status --json`. */
export interface StreamJson {
  readonly messages: number;
  readonly bytes: number;
  /** The last retention record; null before the first run with retention. */
  readonly retention: {
    /** LAMBDA_STREAM_RETENTION of the leader that wrote it. */
    readonly mode: string;
    /** The run after which it purged. */
    readonly run: number;
    readonly at: string;
    /** Per partition: the subject holds everything from this sequence on. */
    readonly keptFrom: readonly number[];
    /** Messages purged after that run. */
    readonly purged: number;
    /** Messages the next run lets go if it publishes (with mode off: would let go). */
    readonly nextRunFrees: number;
    /** nextRunFrees × the stream's mean message size. */
    readonly nextRunFreesBytesEstimate: number;
    /** Why it kept everything or a purge failed; null when it went through. */
    readonly problem: string | null;
  } | null;
}

/** A stream report as `--json` prints it. */
export function streamJson(r: StreamReport): StreamJson {
  const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
  const rec = r.retention;
  const meanBytes = r.messages > 0 ? r.bytes / r.messages : 0;
  return {
    messages: r.messages,
    bytes: r.bytes,
    retention: rec
      ? {
          mode: rec.mode,
          run: rec.run,
          at: new Date(rec.atMs).toISOString(),
          keptFrom: rec.keepFrom,
          purged: sum(rec.purged),
          nextRunFrees: sum(rec.nextFrees),
          nextRunFreesBytesEstimate: Math.round(sum(rec.nextFrees) * meanBytes),
          problem: rec.problem,
        }
      : null,
  };
}

/** Bytes as text: B, KiB, MiB, GiB. */
function bytesText(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  for (; n >= 1024 && i < units.length - 1; i++) n /= 1024;
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

/** The stream and retention lines of `status`. */
function streamLines(s: StatusJson): [string, string][] {
  if (!s.stream) return [["stream", `not read: ${s.streamProblem ?? "no NATS URL"}`]];
  const r = s.stream.retention;
  const frees = r ? `${r.nextRunFrees} messages (≈ ${bytesText(r.nextRunFreesBytesEstimate)})` : "";
  const retention = !r
    ? "no record yet (the coordinator writes one after each published run)"
    : r.mode === "off"
      ? `off (LAMBDA_STREAM_RETENTION); the next run would free ${frees}`
      : `${r.mode}: purged ${r.purged} messages after run ${r.run}; the next run frees ${frees}${r.problem ? `; ${r.problem}` : ""}`;
  return [
    ["stream", `${s.stream.messages} messages, ${bytesText(s.stream.bytes)}`],
    ["retention", retention],
  ];
}

const ROLE_ORDER = ["coordinator", "executor", "speed", "archiver", "serving"];

function roleRank(role: string): number {
  const i = ROLE_ORDER.indexOf(role);
  return i < 0 ? ROLE_ORDER.length : i;
}

/** Members in the order `status` shows them: by role, then id. */
export function sortedMembers(members: readonly Member[]): Member[] {
  return [...members].sort((a, b) => roleRank(a.role) - roleRank(b.role) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** The reply as `--json` prints it, seen at `nowMs`. */
export function statusJson(r: GetStatusResponse, nowMs: number, nats: ClusterNatsState | string = "not asked"): StatusJson {
  const stream: StreamReport | string = typeof nats === "string" ? nats : nats.stream;
  const lease = typeof nats === "string" ? null : nats.archiverLease;
  return {
    watermarkRun: r.watermarkRun,
    nextRunAt: r.nextRunAt?.toISOString() ?? null,
    nextRunInMs: r.nextRunAt ? r.nextRunAt.getTime() - nowMs : null,
    leader: r.leader ? { id: r.leader.id, epoch: r.leader.epoch, leaseAgeS: r.leader.leaseAgeS, leaseS: r.leader.leaseS } : null,
    members: sortedMembers(r.members).map((m) => ({ role: m.role, id: m.id, state: m.state, heartbeatAgeS: m.heartbeatAgeS })),
    partitions: [...r.partitions].sort((a, b) => a.partition - b.partition).map((p) => ({ ...p })),
    watermarkRefused: r.watermarkRefused ? { run: r.watermarkRefused.run, reason: r.watermarkRefused.reason, at: r.watermarkRefused.at?.toISOString() ?? null } : null,
    stream: typeof stream === "string" ? null : streamJson(stream),
    streamProblem: typeof stream === "string" ? stream : null,
    archiverLease: lease ? { id: lease.holder, epoch: lease.epoch, leaseS: lease.leaseMs / 1_000 } : null,
  };
}

/** The leadership key as one line: who, the epoch, the lease's age; or why nobody leads. */
export function leaderText(l: StatusJson["leader"]): string {
  if (l === null) return "none (no coordinator holds the lead; a standby takes it at its next check)";
  const renewed = `renewed ${formatElapsed(l.leaseAgeS * 1_000)} ago, lease ${formatElapsed(l.leaseS * 1_000)}`;
  return l.leaseAgeS < l.leaseS ? `${l.id}, epoch ${l.epoch} (${renewed})` : `${l.id}, epoch ${l.epoch}: lease lapsed (${renewed}); a standby takes over`;
}

/** The archiver lease as one line; absent when NATS was not read. */
function archiverLeaseLines(s: StatusJson): [string, string][] {
  if (!s.stream) return [];
  const l = s.archiverLease;
  if (!l) return [["archiver lease", "never held (no archiver has run)"]];
  if (l.id === "") return [["archiver lease", `released at epoch ${l.epoch}; a standby archiver takes it at its next check`]];
  return [["archiver lease", `${l.id}, epoch ${l.epoch} (lease ${formatElapsed(l.leaseS * 1_000)})`]];
}

/** The status as text: members, partitions, then the watermark run and the next run. */
export function renderStatus(s: StatusJson): string {
  const members =
    s.members.length === 0
      ? "no members have a heartbeat\n"
      : table(
          ["role", "id", "state", "heartbeat"],
          s.members.map((m) => [m.role, m.id, m.state || ABSENT, `${formatElapsed(m.heartbeatAgeS * 1_000)} ago`]),
        );
  const partitions = table(
    ["partition", "node", "generation", "stream head", "applied", "archived", "speed lag", "archiver lag", "held", "invalid"],
    s.partitions.map((p) => [p.partition, p.node || ABSENT, p.generation, p.streamHead, p.appliedSeq, p.archivedSeq, p.speedLag, p.archiverLag, p.speedEventsHeld, p.speedSkippedInvalid]),
  );
  const next =
    s.nextRunAt === null || s.nextRunInMs === null
      ? "none scheduled (runs on demand: lambdactl run)"
      : `${formatInstant(new Date(s.nextRunAt))} (${s.nextRunInMs >= 0 ? `in ${formatElapsed(s.nextRunInMs)}` : `overdue by ${formatElapsed(-s.nextRunInMs)}`})`;
  const ignored = s.partitions.filter((p) => p.speedIgnoredBarriers > 0);
  const summary = keyValues([
    ["leader", leaderText(s.leader)],
    ["watermark run", s.watermarkRun === 0 ? "none yet (no batch run has published)" : s.watermarkRun],
    ...(s.watermarkRefused
      ? [["refused watermark", `run ${s.watermarkRefused.run}: ${s.watermarkRefused.reason}; repair with lambdactl watermark rollback <good run>`] as [string, string]]
      : []),
    ...(ignored.length > 0
      ? [["ignored barriers", ignored.map((p) => `partition ${p.partition}: ${p.speedIgnoredBarriers}`).join(", ") + " (no batch run wrote them)"] as [string, string]]
      : []),
    ["next run", next],
    ...streamLines(s),
    ...archiverLeaseLines(s),
  ]);
  return [`members\n${members}`, `partitions\n${partitions}`, summary].join("\n");
}

async function run(parsed: ParsedCommand, ctx: CliContext): Promise<ExitCode> {
  const timeout = timeoutMs(spec.name, parsed);
  const target = grpcTarget(parsed, ctx, "admin");
  using client = createAdminClient(target, { timeoutMs: timeout });
  const reply = await client.getStatus();
  // The stream is NATS's to say; without it the rest of status still stands.
  const nats = await Promise.resolve()
    .then(() => readClusterNats(resolveNatsTarget({ flags: connectionFlags(parsed), env: ctx.env, cwd: ctx.cwd })))
    .catch((err: unknown) => ensureError(err).message);
  const out = statusJson(reply, ctx.now(), nats);
  ctx.stdout.write(booleanFlag(parsed, "json") ? JSON.stringify(out, null, 2) + "\n" : renderStatus(out));
  return ExitCodes.ok;
}

/** `lambdactl status`. */
export const statusCommand: Command = { spec, run };
