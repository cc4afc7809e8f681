/**
 * Speed-node liveness from the members bucket. A node is alive while its
 * heartbeat keeps changing; the coordinator measures "changing" on its own
 * clock (the KV revision moves), so clock skew between hosts does not matter.
 */

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

  /** Nodes whose heartbeat changed within the timeout, sorted. */
  alive(nowMs: number): string[] {
    return [...this.#seen].filter(([, s]) => nowMs - s.changedAtMs < this.timeoutMs).map(([n]) => n).sort();
  }
}
