/**
 * Readiness of one process: named checks the roles register (NATS connected, ClickHouse
 * reachable, partitions restored, the watermark readable), and failures a role reports when a
 * loop or watch that must run stops. /readyz (main/observe_http.ts) and the serving node's gRPC
 * health both read it. Liveness (/livez) is that the process answers and that no liveness
 * check fails: those are kept for states only a restart ends (a speed node stuck on one change
 * for minutes), never for NATS or ClickHouse being away, which a restart would not cure.
 */
import { ensureError } from "./errors.js";

/** null: fine; a string: why not, for people (one line). */
export type CheckResult = string | null;
export type HealthCheck = () => CheckResult | Promise<CheckResult>;

export interface CheckOutcome {
  readonly name: string;
  readonly ok: boolean;
  /** Why it is not ok ("" when ok). */
  readonly detail: string;
}

export interface Readiness {
  readonly ready: boolean;
  readonly checks: readonly CheckOutcome[];
}

export interface Health {
  /** Adds a check run on every readiness question. @returns a function that removes it */
  addCheck(name: string, check: HealthCheck): () => void;
  /**
   * Marks `name` failed for good (a consume loop or a watch that ended): the process stays
   * unready until it restarts. The first reason is kept.
   */
  fail(name: string, reason: string): void;
  /** Runs every check, each within CHECK_TIMEOUT_MS. */
  readiness(): Promise<Readiness>;
  /**
   * Adds a check /livez runs: one that fails says the process cannot get out of where it is by
   * itself, and should be restarted. It answers at once (/livez also proves the loop runs).
   * @returns a function that removes it
   */
  addLivenessCheck(name: string, check: () => CheckResult): () => void;
  /** Runs every liveness check. @returns the failing ones; empty while the process is live */
  liveness(): CheckOutcome[];
}

/** A check that has not answered in this long counts as failed. */
export const CHECK_TIMEOUT_MS = 2_000;

export function createHealth(): Health {
  const checks = new Map<string, HealthCheck>();
  const livenessChecks = new Map<string, () => CheckResult>();
  const failures = new Map<string, string>();
  const run = async (name: string, check: HealthCheck): Promise<CheckOutcome> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      const detail = await Promise.race([
        Promise.resolve().then(check),
        new Promise<string>((resolve) => {
          timer = setTimeout(() => resolve(`no answer within ${CHECK_TIMEOUT_MS} ms`), CHECK_TIMEOUT_MS);
        }),
      ]);
      return { name, ok: detail === null, detail: detail ?? "" };
    } catch (err) {
      return { name, ok: false, detail: ensureError(err).message };
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    addCheck(name, check) {
      if (checks.has(name)) throw new Error(`health check ${name} is registered twice`);
      checks.set(name, check);
      return () => void checks.delete(name);
    },
    fail(name, reason) {
      if (!failures.has(name)) failures.set(name, reason);
    },
    async readiness() {
      const outcomes = await Promise.all([...checks].map(([name, check]) => run(name, check)));
      for (const [name, detail] of failures) outcomes.push({ name, ok: false, detail });
      outcomes.sort((a, b) => a.name.localeCompare(b.name));
      return { ready: outcomes.every((o) => o.ok), checks: outcomes };
    },
    addLivenessCheck(name, check) {
      if (livenessChecks.has(name)) throw new Error(`liveness check ${name} is registered twice`);
      livenessChecks.set(name, check);
      return () => void livenessChecks.delete(name);
    },
    liveness() {
      const failing: CheckOutcome[] = [];
      for (const [name, check] of livenessChecks) {
        let detail: CheckResult;
        try {
          detail = check();
        } catch (err) {
          detail = ensureError(err).message;
        }
        if (detail !== null) failing.push({ name, ok: false, detail });
      }
      return failing;
    },
  };
}
