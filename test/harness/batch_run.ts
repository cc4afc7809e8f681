/** A batch run asked for over NATS, as serving's admin API and lambdactl ask the leading coordinator. */
import type { NatsConnection } from "@nats-io/transport-node";
import { requestRun } from "../../src/nats/coordinator_control.js";
import type { Names } from "../../src/nats/names.js";

/** Asks the leader for a batch run as `nc`'s user and resolves with its run when its watermark is published. */
export function runBatchOver(nc: NatsConnection, names: Names): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const r = requestRun(nc, names, (reply) => {
      if (reply instanceof Error) return (r.stop(), reject(reply));
      if (reply.kind === "published") return (r.stop(), resolve(reply.watermark.run));
      if (reply.kind === "failed") return (r.stop(), reject(new Error(reply.error)));
    });
  });
}
