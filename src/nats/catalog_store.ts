/**
 * The catalog a cluster runs: the catalog file's JSON document, versioned, in
 * the catalog bucket under `current` (older versions stay as the key's
 * history). Every role follows it, so a new catalog reaches a running cluster
 * (`lambdactl catalog apply`) without a restart.
 *
 * The file a role starts with only seeds the bucket. The coordinator applies its
 * file when the bucket is empty, or when the file differs from the file a
 * coordinator last applied (an operator deployed a new one); otherwise the
 * bucket stands, since it may hold a later `lambdactl catalog apply`. Other
 * roles start from the bucket when it has a version, from their file when not,
 * and follow the bucket from there.
 *
 * A version is written only if the running one can take it
 * (core/catalog_compat): metrics may change freely, sources may only grow.
 */
import type { KV } from "@nats-io/kv";
import { catalogFingerprint, parseCatalog, type Catalog, type CatalogFile } from "../core/catalog.js";
import { incompatibilities, type Incompatibility } from "../core/catalog_compat.js";
import { ensureError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { compareAndSet, fields, readValue, watchValues } from "./kv.js";
import { CATALOG_KEY } from "./names.js";

/** `catalog` bucket, key `current`. */
export interface StoredCatalog {
  /** 1 for the first catalog the cluster ran, then one more per change. */
  readonly version: number;
  /** core/catalog catalogFingerprint of the document. */
  readonly fingerprint: string;
  /** The catalog file's JSON document, as written (docs/catalog.md). */
  readonly document: unknown;
  /** Who applied it, e.g. "file catalog/catalog.json (coordinator c-1)" or "lambdactl catalog apply next.json". */
  readonly origin: string;
  readonly appliedAtMs: number;
  /** Fingerprint of the catalog file a coordinator last applied; a coordinator whose file differs applies its own. */
  readonly fileFingerprint: string | null;
}

export function parseStoredCatalog(v: unknown): StoredCatalog {
  const o = fields.object(v, "stored catalog");
  if (o.document === undefined) throw new TypeError("document is missing");
  return {
    version: fields.int(o, "version", 1),
    fingerprint: fields.string(o, "fingerprint"),
    document: o.document,
    origin: fields.string(o, "origin"),
    appliedAtMs: fields.int(o, "appliedAtMs"),
    fileFingerprint: fields.stringOrNull(o, "fileFingerprint"),
  };
}

/** A catalog the running one cannot be replaced by; `problems` name each entry. */
export class CatalogRefusedError extends Error {
  override readonly name = "CatalogRefusedError";
  constructor(
    readonly what: string,
    readonly runningVersion: number,
    readonly problems: readonly Incompatibility[],
  ) {
    super(`${what} cannot replace catalog version ${runningVersion}: ${problems.map((p) => `${p.path}: ${p.reason}`).join("; ")}`);
  }
}

/** The catalog of a stored version. @throws CatalogError naming the version and the entry (a version written by another build). */
export function catalogOf(stored: StoredCatalog): Catalog {
  return parseCatalog(stored.document, `catalog version ${stored.version}`);
}

/** The stored catalog with its KV revision, or null when the cluster has none yet. */
export async function readStoredCatalog(kv: KV): Promise<{ stored: StoredCatalog; revision: number } | null> {
  const v = await readValue(kv, CATALOG_KEY, parseStoredCatalog);
  return v && { stored: v.value, revision: v.revision };
}

/** Given up inside compareAndSet: the bucket already holds this catalog. */
class Unchanged extends Error {
  constructor(readonly stored: StoredCatalog) {
    super("unchanged");
  }
}

export interface ApplyOptions {
  /** Who applies it (StoredCatalog.origin). */
  readonly origin: string;
  /** A coordinator applying its catalog file: remembered, so the same file does not overwrite a later apply. */
  readonly fromFile?: boolean;
}

/**
 * Makes `file`'s catalog the cluster's next version (compare-and-set), unless the bucket holds it already.
 * @returns the version in the bucket afterwards, and whether this call wrote it
 * @throws CatalogRefusedError when the running catalog cannot take it
 */
export async function applyCatalog(kv: KV, file: CatalogFile, opts: ApplyOptions): Promise<{ stored: StoredCatalog; changed: boolean }> {
  const fingerprint = catalogFingerprint(file.catalog);
  try {
    const { value: stored } = await compareAndSet(kv, CATALOG_KEY, parseStoredCatalog, (current): StoredCatalog => {
      if (current) {
        const cur = current.value;
        const sameFile = !opts.fromFile || cur.fileFingerprint === fingerprint;
        if (cur.fingerprint === fingerprint && sameFile) throw new Unchanged(cur);
        const problems = incompatibilities(catalogOf(cur), file.catalog);
        if (problems.length > 0) throw new CatalogRefusedError(file.path, cur.version, problems);
      }
      return {
        version: (current?.value.version ?? 0) + 1,
        fingerprint,
        document: file.document,
        origin: opts.origin,
        appliedAtMs: Date.now(),
        fileFingerprint: opts.fromFile ? fingerprint : (current?.value.fileFingerprint ?? null),
      };
    });
    return { stored, changed: true };
  } catch (err) {
    if (err instanceof Unchanged) return { stored: err.stored, changed: false };
    throw err;
  }
}

/**
 * The coordinator's rule at start: its file when the bucket is empty or the file changed since
 * a coordinator last applied one; the bucket's version otherwise.
 * @throws CatalogRefusedError when the file changed in a way the running catalog cannot take
 */
export async function seedCatalog(kv: KV, file: CatalogFile, coordinatorId: string, log: Logger): Promise<StoredCatalog> {
  const current = await readStoredCatalog(kv);
  const fingerprint = catalogFingerprint(file.catalog);
  if (current && current.stored.fileFingerprint === fingerprint) {
    if (current.stored.fingerprint !== fingerprint) {
      log.info("the cluster runs a catalog applied after this file; the file applies again once it changes", {
        version: current.stored.version,
        origin: current.stored.origin,
        file: file.path,
      });
    }
    return current.stored;
  }
  const { stored, changed } = await applyCatalog(kv, file, { origin: `file ${file.path} (coordinator ${coordinatorId})`, fromFile: true });
  if (changed) log.info("applied the catalog file as the cluster's catalog", { version: stored.version, file: file.path });
  return stored;
}

/** The catalog a role runs, following the bucket. */
export interface CatalogFeed {
  current(): Catalog;
  /** The stored version in use; 0 while the role runs its own file (the bucket is empty). */
  version(): number;
  /** Reads the bucket now (a record of a source the current catalog lacks may come from a newer version). */
  refresh(): Promise<Catalog>;
  /** Calls `listener` after each change, one call at a time, in order; returns how to unsubscribe. */
  subscribe(listener: (catalog: Catalog, version: number) => void | Promise<void>): () => void;
  stop(): void;
}

/** A feed of one catalog that never changes (a role started without the bucket: tests, benches). */
export function fixedCatalog(catalog: Catalog): CatalogFeed {
  return { current: () => catalog, version: () => 0, refresh: async () => catalog, subscribe: () => () => {}, stop: () => {} };
}

/** Follows the bucket from its current version, or from `fallback` while it is empty. */
export async function followCatalog(kv: KV, fallback: Catalog, log: Logger): Promise<CatalogFeed> {
  let catalog = fallback;
  let version = 0;
  const listeners = new Set<(c: Catalog, v: number) => void | Promise<void>>();
  let notifying: Promise<void> = Promise.resolve();
  /** Adopts a stored version newer than the one in use; a version this build cannot read is logged and skipped. */
  const offer = (stored: StoredCatalog) => {
    if (stored.version <= version) return;
    let next: Catalog;
    try {
      next = catalogOf(stored);
    } catch (err) {
      log.error("ignoring a stored catalog this build cannot read; keeping the one in use", { version: stored.version, inUse: version, err: ensureError(err) });
      return;
    }
    catalog = next;
    version = stored.version;
    log.info("catalog version adopted", { version, origin: stored.origin });
    for (const l of listeners) {
      notifying = notifying.then(() => l(next, stored.version)).catch((err) => log.error("reacting to a new catalog version failed", { version: stored.version, err: ensureError(err) }));
    }
  };
  const first = await readStoredCatalog(kv);
  if (first) offer(first.stored);
  const watch = await watchValues(kv, { key: CATALOG_KEY, parse: parseStoredCatalog, what: "the catalog", log, onValue: (_k, stored) => offer(stored) });
  return {
    current: () => catalog,
    version: () => version,
    refresh: async () => {
      const r = await readStoredCatalog(kv);
      if (r) offer(r.stored);
      return catalog;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stop: () => watch.stop(),
  };
}
