/** Where things are, from the compiled bench's location (dist/bench/ → the repository root). */
import { fileURLToPath } from "node:url";

/** The repository root. */
export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
