/**
 * Settings every process of a cluster must share, recorded by the first role
 * that starts (coordinator bucket, key `settings`) and checked by every later
 * one. The partition count above all: an event's partition is its key's hash
 * mod the count, so a process with another count would send events to actors
 * that do not own their keys, and queries to actors that never saw them.
 */
import type { KV } from "@nats-io/kv";
import { compareAndSet, fields, readValue } from "./kv.js";
import { CLUSTER_SETTINGS_KEY } from "./names.js";
import { createOrAwait, NO_WAIT, type SetupWait } from "./setup.js";

export interface ClusterSettings {
  readonly partitions: number;
  /** When the first role recorded them. */
  readonly recordedAtMs: number;
  /** Who recorded them (member id or tool). */
  readonly recordedBy: string;
}

export function parseClusterSettings(v: unknown): ClusterSettings {
  const o = fields.object(v, "cluster settings");
  return { partitions: fields.int(o, "partitions", 1), recordedAtMs: fields.int(o, "recordedAtMs"), recordedBy: fields.string(o, "recordedBy") };
}

/** This process's settings differ from the cluster's. */
export class ClusterSettingsError extends Error {
  override readonly name = "ClusterSettingsError";
  constructor(
    readonly cluster: ClusterSettings,
    readonly mine: number,
  ) {
    super(
      `this cluster has ${cluster.partitions} partitions (recorded by ${cluster.recordedBy} at ${new Date(cluster.recordedAtMs).toISOString()}), ` +
        `this process is configured with ${mine} (LAMBDA_PARTITIONS / --partitions); events would go to the wrong partitions. Use ${cluster.partitions}`,
    );
  }
}

/**
 * Records `partitions` as the cluster's when none are recorded yet, else checks them. A role whose
 * NATS user may not write the settings (only a coordinator's may, nats/permissions.ts) and finds
 * none recorded waits for a coordinator to record them, as `wait` says (default: fail at once).
 * @throws ClusterSettingsError when the cluster's partition count differs
 * @throws NatsSetupMissingError when no coordinator recorded them within the wait
 */
export async function agreeOnSettings(kv: KV, partitions: number, who: string, wait: SetupWait = NO_WAIT): Promise<ClusterSettings> {
  const recorded = async () => {
    if (!(await readValue(kv, CLUSTER_SETTINGS_KEY, parseClusterSettings))) throw new Error("no cluster settings recorded yet");
  };
  return createOrAwait(recorded, `the cluster settings (key ${CLUSTER_SETTINGS_KEY} of the coordinator bucket)`, () => recordOrCheck(kv, partitions, who), wait, (err) => err instanceof ClusterSettingsError);
}

async function recordOrCheck(kv: KV, partitions: number, who: string): Promise<ClusterSettings> {
  const recorded = await readValue(kv, CLUSTER_SETTINGS_KEY, parseClusterSettings);
  if (recorded) {
    if (recorded.value.partitions !== partitions) throw new ClusterSettingsError(recorded.value, partitions);
    return recorded.value;
  }
  // Two first roles at once: one records, the other reads what it recorded and checks it.
  const { value } = await compareAndSet(kv, CLUSTER_SETTINGS_KEY, parseClusterSettings, (current) => {
    if (current) {
      if (current.value.partitions !== partitions) throw new ClusterSettingsError(current.value, partitions);
      return current.value;
    }
    return { partitions, recordedAtMs: Date.now(), recordedBy: who };
  });
  return value;
}

/**
 * Checks `partitions` against the cluster's without recording anything (clients such as lambdactl).
 * @throws ClusterSettingsError when they differ
 */
export async function checkSettings(kv: KV, partitions: number): Promise<void> {
  const current = await readValue(kv, CLUSTER_SETTINGS_KEY, parseClusterSettings);
  if (current && current.value.partitions !== partitions) throw new ClusterSettingsError(current.value, partitions);
}
