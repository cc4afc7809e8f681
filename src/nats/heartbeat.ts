/**
 * Heartbeats: every role process writes `<role>.<id>` into the members bucket
 * on an interval, so the coordinator (speed nodes) and operators (lambdactl
 * status) see who is alive. A clean stop deletes the key at once.
 */
import type { KV } from "@nats-io/kv";
import { ensureError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { MemberHeartbeat } from "../core/records.js";
import { putValue } from "./kv.js";

export const memberKey = (role: MemberHeartbeat["role"], id: string) => `${role}.${id}`;

export interface Heartbeat {
  /** Stops beating and deletes the key. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Writes a heartbeat now and every `intervalMs`; `extra` adds role-specific fields at each beat.
 * A failed write is logged and retried at the next beat.
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
  const beat = () => {
    const hb: MemberHeartbeat = { ...extra(), role, id, atMs: Date.now() };
    return putValue(kv, key, hb).catch((err) => log.warn("heartbeat failed; retrying at the next beat", { key, err: ensureError(err) }));
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
