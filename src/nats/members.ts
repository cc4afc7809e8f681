/**
 * Members: every role process writes its heartbeat under `<role>.<id>` in the
 * members bucket on an interval, so the coordinator (speed nodes) and operators
 * (lambdactl status) see who is alive. A clean stop deletes the key at once; the
 * coordinator drops the keys of members long gone.
 */
import type { KV } from "@nats-io/kv";
import { ensureError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { MemberHeartbeat } from "../core/records.js";
import { fields, putValue, readValue, watchValues, type ValueWatch } from "./kv.js";

export const memberKey = (role: MemberHeartbeat["role"], id: string) => `${role}.${id}`;

const ROLES: readonly MemberHeartbeat["role"][] = ["coordinator", "executor", "archiver", "serving", "speed"];

export function parseHeartbeat(v: unknown): MemberHeartbeat {
  const o = fields.object(v, "heartbeat");
  const archived = o.archived === undefined ? undefined : fields.intArray(o, "archived");
  return {
    role: fields.oneOf(o, "role", ROLES),
    id: fields.string(o, "id"),
    atMs: fields.int(o, "atMs"),
    ...(o.state === undefined ? {} : { state: fields.string(o, "state") }),
    ...(o.epoch === undefined ? {} : { epoch: fields.int(o, "epoch") }),
    ...(o.nextRunAtMs === undefined ? {} : { nextRunAtMs: fields.intOrNull(o, "nextRunAtMs") }),
    ...(archived === undefined ? {} : { archived }),
  };
}

export interface Heartbeat {
  /** Stops beating and deletes the key. Idempotent. */
  stop(): Promise<void>;
}

/** While heartbeats keep failing (NATS electing leaders, or gone), one failure in this many is logged. */
export const HEARTBEAT_FAILURES_LOGGED_EVERY = 10;

/**
 * Writes a heartbeat now and every `intervalMs`; `extra` adds role-specific fields at each beat.
 * A failed write is retried at the next beat; the first failure of a run of them is logged, then
 * every HEARTBEAT_FAILURES_LOGGED_EVERY-th, and the first beat that works again.
 */
export async function startHeartbeat(
  kv: KV,
  role: MemberHeartbeat["role"],
  id: string,
  intervalMs: number,
  log: Logger,
  extra: () => Partial<MemberHeartbeat> = () => ({}),
): Promise<Heartbeat> {
  const key = memberKey(role, id);
  // Failures in a row: the first is logged, then one in HEARTBEAT_FAILURES_LOGGED_EVERY, and the recovery.
  let failing = 0;
  const beat = () => {
    const hb: MemberHeartbeat = { ...extra(), role, id, atMs: Date.now() };
    return putValue(kv, key, hb).then(
      () => {
        if (failing > 0) log.info("heartbeat written again", { key, failedBeats: failing });
        failing = 0;
      },
      (err) => {
        if (failing++ % HEARTBEAT_FAILURES_LOGGED_EVERY === 0) log.warn("heartbeat failed; retrying at the next beat", { key, failedBeats: failing, err: ensureError(err) });
      },
    );
  };
  await beat();
  const timer = setInterval(() => void beat(), intervalMs);
  timer.unref();
  let stopping: Promise<void> | undefined;
  return {
    stop: () =>
      (stopping ??= (async () => {
        clearInterval(timer);
        await kv.delete(key).catch(() => undefined); // best effort: the coordinator times the key out otherwise
      })()),
  };
}

/** A member's last heartbeat and the time the NATS server stored it (the server's clock, not the member's). */
export interface StoredHeartbeat {
  readonly hb: MemberHeartbeat;
  readonly storedAtMs: number;
}

/** Every member's last heartbeat; a malformed one is logged and left out. */
export async function readMembers(kv: KV, log: Logger): Promise<StoredHeartbeat[]> {
  const out: StoredHeartbeat[] = [];
  // keys() lists a key again when it is written while the listing runs (a heartbeat beats): once each.
  const keys = new Set<string>();
  for await (const key of await kv.keys()) keys.add(key);
  for (const key of keys) {
    try {
      const hb = await readValue(kv, key, parseHeartbeat);
      if (hb) out.push({ hb: hb.value, storedAtMs: hb.storedAtMs });
    } catch (err) {
      log.warn("leaving out a malformed member heartbeat", { key, err: ensureError(err) });
    }
  }
  return out;
}

/**
 * Calls `onChange` with each member key, its heartbeat and revision (null: the member said
 * goodbye) and the time the NATS server stored the change, now and at each change, until stopped.
 */
export function watchMembers(
  kv: KV,
  log: Logger,
  onChange: (member: string, beat: { hb: MemberHeartbeat; revision: number } | null, storedAtMs: number) => void,
): Promise<ValueWatch> {
  return watchValues(kv, {
    key: ">",
    parse: parseHeartbeat,
    what: "member heartbeats",
    log,
    onValue: (key, hb, revision, storedAtMs) => onChange(key, { hb, revision }, storedAtMs),
    onDelete: (key, _revision, storedAtMs) => onChange(key, null, storedAtMs),
  });
}

/** Deletes a member's key if it is still at `revision` (a member that beat again keeps it). */
export async function dropMember(kv: KV, member: string, revision: number): Promise<void> {
  await kv.delete(member, { previousSeq: revision });
}
