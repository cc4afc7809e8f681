/**
 * Liveness from the members bucket. A member is alive while its heartbeat
 * keeps changing; the coordinator measures "changing" on its own clock (the KV
 * revision moves), so clock skew between hosts does not matter. The same
 * measure, with a longer timeout, finds the keys of members long gone (a
 * SIGKILLed process never deletes its key) so the coordinator can drop them.
 */

/**
 * A member whose heartbeat has not changed for this many node timeouts
 * (LAMBDA_NODE_TIMEOUT_MS) is dropped from the members bucket. Until then
 * `lambdactl status` lists it as gone, so an operator sees what died.
 */
export const MEMBER_DROP_AFTER_NODE_TIMEOUTS = 12;

export interface MemberSighting {
  revision: number;
  /** Coordinator-local time the revision last changed. */
  changedAtMs: number;
}

export class MembershipTracker {
  readonly #seen = new Map<string, MemberSighting>();

  constructor(private readonly timeoutMs: number) {}

  /** Records the heartbeat revisions read now; nodes absent from `current` are gone. */
  observe(current: ReadonlyMap<string, number>, nowMs: number): void {
    for (const node of [...this.#seen.keys()]) if (!current.has(node)) this.#seen.delete(node);
    for (const [node, revision] of current) {
      const s = this.#seen.get(node);
      if (!s || s.revision !== revision) this.#seen.set(node, { revision, changedAtMs: nowMs });
    }
  }

  /** Members whose heartbeat has not changed within the timeout, with the revision last seen. */
  expired(nowMs: number): { member: string; revision: number }[] {
    return [...this.#seen].filter(([, s]) => nowMs - s.changedAtMs >= this.timeoutMs).map(([member, s]) => ({ member, revision: s.revision }));
  }

  /** Nodes whose heartbeat changed within the timeout, sorted. */
  alive(nowMs: number): string[] {
    return [...this.#seen].filter(([, s]) => nowMs - s.changedAtMs < this.timeoutMs).map(([n]) => n).sort();
  }
}
