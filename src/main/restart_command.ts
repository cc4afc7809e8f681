/** The command that starts the local cluster again on the data a previous one left (README: "after a crash"). */
import { DEFAULT_DATABASE, DEFAULT_PARTITIONS, DEFAULT_PREFIX } from "../core/config.js";

/** Where a local cluster's data lives, and the settings a restart on it needs. */
export interface ClusterData {
  natsUrl?: string;
  natsStoreDir?: string;
  /** nats-server processes on that store (a cluster when more than one). */
  natsNodes?: number;
  chdbPath?: string;
  prefix: string;
  partitions: number;
  database?: string;
}

/** `w` as one shell word (quoted when it needs to be). */
export const shellWord = (w: string) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replaceAll("'", "'\\''")}'`);

/** The command that starts a local cluster again on `d`'s data (LAMBDA_NATS_URL when the server was not ours). */
export function restartCommand(d: ClusterData): string {
  const env: [string, string | number | undefined][] = [
    d.natsStoreDir ? ["LAMBDA_NATS_STORE_DIR", d.natsStoreDir] : ["LAMBDA_NATS_URL", d.natsUrl],
    ["LAMBDA_LOCAL_NATS_NODES", d.natsStoreDir && (d.natsNodes ?? 1) > 1 ? d.natsNodes : undefined],
    ["LAMBDA_CHDB_PATH", d.chdbPath],
    ["LAMBDA_PREFIX", d.prefix === DEFAULT_PREFIX ? undefined : d.prefix],
    ["LAMBDA_PARTITIONS", d.partitions === DEFAULT_PARTITIONS ? undefined : d.partitions],
    ["LAMBDA_DATABASE", d.database === DEFAULT_DATABASE ? undefined : d.database],
  ];
  return [...env.filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${shellWord(String(v))}`), "npm start"].join(" ");
}

