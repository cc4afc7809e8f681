/**
 * Liveness from the members bucket, timed on the NATS server's clock: each
 * heartbeat is stamped with the time the server stored it, and "now" is the
 * newest such time seen (every role beats, this coordinator too). A member is
 * alive while its last heartbeat is younger than the timeout by that clock. So
 * neither skew nor a fast clock on the coordinator's host expires anyone, and a
 * coordinator that was paused sees the heartbeats of its pause in order when it
 * runs again: only a heartbeat that was really missed moves a partition.
 */

/**
 * A member whose heartbeat has not changed for this many node timeouts
 * (LAMBDA_NODE_TIMEOUT_MS) is dropped from the members bucket. Until then
 * `lambdactl status` lists it as gone, so an operator sees what died.
 */
export const MEMBER_DROP_AFTER_NODE_TIMEOUTS = 12;

export interface MemberSighting {
  readonly revision: number;
  /** Server time its last heartbeat was stored at. */
  readonly beatAtMs: number;
}

export class MembershipTracker {
  readonly #seen = new Map<string, MemberSighting>();
  #serverNowMs = 0;

  /** A heartbeat of `member` (key `<role>.<id>`) the server stored at `storedAtMs`. */
  beat(member: string, revision: number, storedAtMs: number): void {
    this.#seen.set(member, { revision, beatAtMs: storedAtMs });
    this.#serverNowMs = Math.max(this.#serverNowMs, storedAtMs);
  }

  /** `member` said goodbye (its key was deleted) at server time `storedAtMs`. */
  left(member: string, storedAtMs: number): void {
    this.#seen.delete(member);
    this.#serverNowMs = Math.max(this.#serverNowMs, storedAtMs);
  }

  /** The newest server time seen. */
  get serverNowMs(): number {
    return this.#serverNowMs;
  }

  /** Members whose last heartbeat is at least `timeoutMs` old, with the revision last seen. */
  expired(timeoutMs: number): { member: string; revision: number }[] {
    return [...this.#seen].filter(([, s]) => this.#serverNowMs - s.beatAtMs >= timeoutMs).map(([member, s]) => ({ member, revision: s.revision }));
  }

  /** Ids of the members of `role` (keys `<role>.<id>`) whose last heartbeat is younger than `timeoutMs`, sorted. */
  alive(role: string, timeoutMs: number): string[] {
    const prefix = `${role}.`;
    return [...this.#seen]
      .filter(([k, s]) => k.startsWith(prefix) && this.#serverNowMs - s.beatAtMs < timeoutMs)
      .map(([k]) => k.slice(prefix.length))
      .sort();
  }
}
