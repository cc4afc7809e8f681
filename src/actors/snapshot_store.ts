/**
 * Where speed-actor snapshots live: a KV bucket, a snapshot split into chunks
 * (a NATS message is at most max_payload, 1 MiB by default) under keys of its
 * own write, and a manifest per partition written last. A reader gets the
 * manifest and then each chunk with direct gets, so a read never waits on a
 * write: if a newer write replaced the chunks meanwhile, the reader sees a
 * missing chunk and starts over from the new manifest.
 *
 * The manifest is written with compare-and-set and carries the writer's
 * assignment generation, so a former owner that lost its partition cannot
 * overwrite the snapshot of the new owner: its write fails and it learns it
 * is stale.
 */
import type { KV } from "@nats-io/kv";
import { encode } from "../nats/codec.js";
import { fields, parseKvEntry } from "../nats/kv.js";

/** Bytes per chunk: well under the default 1 MiB max_payload (and never above the server's). */
export const SNAPSHOT_CHUNK_BYTES = 256 * 1024;
/** Room left in a message for what NATS adds around a chunk. */
const CHUNK_MARGIN_BYTES = 1024;
/** Attempts a read makes while writes keep replacing the snapshot. */
const READ_ATTEMPTS = 5;

interface Manifest {
  writeId: string;
  chunks: number;
  bytes: number;
  generation: number;
}

function parseManifest(v: unknown): Manifest {
  const o = fields.object(v, "snapshot manifest");
  return { writeId: fields.string(o, "writeId"), chunks: fields.int(o, "chunks", 1), bytes: fields.int(o, "bytes"), generation: fields.int(o, "generation") };
}

/** A newer generation owns the snapshot: this writer is stale and must stop writing. */
export class SnapshotFencedError extends Error {
  override readonly name = "SnapshotFencedError";
  constructor(
    readonly partition: number,
    readonly held: number,
    readonly current: number,
  ) {
    super(`snapshot of partition ${partition} belongs to generation ${current}; this writer holds generation ${held}`);
  }
}

export interface SnapshotStore {
  /** The latest snapshot of `partition`, or null when there is none. */
  read(partition: number): Promise<Uint8Array | null>;
  /** Writes a snapshot for `generation`. @throws SnapshotFencedError when a newer generation wrote one. */
  write(partition: number, generation: number, data: Uint8Array): Promise<void>;
  /** Removes the snapshot of `partition` (tests, repair). */
  remove(partition: number): Promise<void>;
}

const manifestKey = (p: number) => `manifest.${p}`;
const chunkKey = (p: number, writeId: string, i: number) => `chunk.${p}.${writeId}.${i}`;

/**
 * @param maxPayloadBytes the NATS server's max_payload now (nc.info.max_payload): a server set
 * below SNAPSHOT_CHUNK_BYTES gets smaller chunks. @default no limit beyond SNAPSHOT_CHUNK_BYTES
 */
export function createSnapshotStore(kv: KV, maxPayloadBytes: () => number = () => Number.POSITIVE_INFINITY): SnapshotStore {
  /** The manifest (null when none) and the revision a write must compare against (0: create). */
  const readManifest = async (p: number): Promise<{ manifest: Manifest | null; revision: number }> => {
    const e = await kv.get(manifestKey(p));
    if (!e || e.operation !== "PUT") return { manifest: null, revision: e?.revision ?? 0 };
    // A malformed manifest is a MalformedValueError naming the key, not a half-read snapshot.
    return { manifest: parseKvEntry(e, parseManifest), revision: e.revision };
  };
  const purgeChunks = async (p: number, m: Manifest) => {
    for (let i = 0; i < m.chunks; i++) await kv.purge(chunkKey(p, m.writeId, i));
  };
  let writes = 0;

  return {
    async read(p) {
      for (let attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
        const { manifest } = await readManifest(p);
        if (!manifest) return null;
        const out = new Uint8Array(manifest.bytes);
        let offset = 0;
        let complete = true;
        for (let i = 0; i < manifest.chunks; i++) {
          const e = await kv.get(chunkKey(p, manifest.writeId, i));
          if (!e || e.operation !== "PUT") {
            complete = false; // replaced by a newer write while we read
            break;
          }
          out.set(e.value, offset);
          offset += e.value.length;
        }
        if (complete && offset === manifest.bytes) return out;
      }
      throw new Error(`snapshot of partition ${p} kept changing while it was read (${READ_ATTEMPTS} attempts)`);
    },

    async write(p, generation, data) {
      const writeId = `${generation}-${Date.now().toString(36)}-${(writes++).toString(36)}`;
      const size = Math.max(CHUNK_MARGIN_BYTES, Math.min(SNAPSHOT_CHUNK_BYTES, maxPayloadBytes() - CHUNK_MARGIN_BYTES));
      const chunks = Math.max(1, Math.ceil(data.length / size));
      for (let i = 0; i < chunks; i++) {
        await kv.put(chunkKey(p, writeId, i), data.subarray(i * size, (i + 1) * size));
      }
      const next: Manifest = { writeId, chunks, bytes: data.length, generation };
      for (;;) {
        const { manifest: prev, revision } = await readManifest(p);
        if (prev && prev.generation > generation) {
          await purgeChunks(p, next);
          throw new SnapshotFencedError(p, generation, prev.generation);
        }
        try {
          if (revision === 0) await kv.create(manifestKey(p), encode(next));
          else await kv.update(manifestKey(p), encode(next), revision);
        } catch (err) {
          // Another writer moved the manifest: read it again and decide anew. Anything else is a real failure.
          if ((await readManifest(p)).revision === revision) {
            await purgeChunks(p, next).catch(() => undefined); // best effort: the write failure is what matters
            throw err;
          }
          continue;
        }
        if (prev) await purgeChunks(p, prev);
        return;
      }
    },

    async remove(p) {
      const { manifest } = await readManifest(p);
      await kv.purge(manifestKey(p));
      if (manifest) await purgeChunks(p, manifest);
    },
  };
}
