/** What every figure receives: the resolved options, the shared environment and a progress line. */
import type { BenchEnv } from "./env.js";
import type { BenchOptions } from "./options.js";

/** Passed to every figure's run(). */
export interface BenchContext {
  readonly opts: BenchOptions;
  readonly env: BenchEnv;
  /** A progress line on stderr (stdout carries only the results table). */
  progress(message: string): void;
}
