/**
 * The catalog: sources (typed schemas) and metrics, declared once in a JSON file
 * that every role reads. The same metric definition is compiled to ClickHouse SQL
 * for the batch layer (src/batch/sql.ts) and to incremental aggregators for the
 * speed layer (src/core/aggregate.ts, applied by src/actors/speed_state.ts), so
 * the two cannot drift apart (test/integration/parity.test.ts proves they compute
 * the same state). The format is documented in docs/catalog.md.
 */
import { readFileSync } from "node:fs";
import { CatalogError } from "./errors.js";
import { parseCatalog } from "./catalog_parse.js";
import type { Catalog } from "./catalog_types.js";

export * from "./catalog_types.js";
export { parseCatalog, parseWindow } from "./catalog_parse.js";

/** A catalog file: where it was read from, its JSON document as written, and the parsed catalog. */
export interface CatalogFile {
  readonly path: string;
  readonly document: unknown;
  readonly catalog: Catalog;
}

/** Reads and validates a catalog file. @throws CatalogError naming the file, the entry and the field. */
export function readCatalogFile(file: string): CatalogFile {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new CatalogError(file, "(file)", `cannot read: ${(err as Error).message}`);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (err) {
    throw new CatalogError(file, "(file)", `not valid JSON: ${(err as Error).message}`);
  }
  return { path: file, document, catalog: parseCatalog(document, file) };
}

/** Reads and validates a catalog file. @throws CatalogError naming the file, the entry and the field. */
export function loadCatalog(file: string): Catalog {
  return readCatalogFile(file).catalog;
}
