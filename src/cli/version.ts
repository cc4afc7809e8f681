/** The version lambdactl prints for `--version`: the package's, read from its package.json. */
import { readFileSync } from "node:fs";

/** package.json of the package this file was built into: dist/src/cli/version.js is three levels below it. */
const PACKAGE_JSON = new URL("../../../package.json", import.meta.url);

/**
 * The `name` and `version` of the installed package.
 * @throws Error naming the file when it cannot be read or has no version (a broken install).
 */
export function packageVersion(): { readonly name: string; readonly version: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(PACKAGE_JSON, "utf8"));
  } catch (err) {
    throw new Error(`cannot read ${PACKAGE_JSON.pathname}: ${(err as Error).message}`, { cause: err });
  }
  const { name, version } = (doc ?? {}) as { name?: unknown; version?: unknown };
  if (typeof version !== "string" || typeof name !== "string") throw new Error(`${PACKAGE_JSON.pathname} has no name or version`);
  return { name, version };
}
