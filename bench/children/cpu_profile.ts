/**
 * Preloaded into child processes (NODE_OPTIONS=--import=…) when the bench runs
 * with --profile-dir: node refuses --cpu-prof in NODE_OPTIONS, and speed nodes
 * are started by the product's spawnNode, whose arguments the bench does not
 * choose. Samples every millisecond, like --cpu-prof, and writes
 * <dir>/CPU.<script>.<pid>.cpuprofile when the process exits.
 */
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { basename, join } from "node:path";

/** Environment variable naming the profile directory (not LAMBDA_*: the runtime's config refuses unknown keys there). */
export const PROFILE_DIR_ENV = "BENCH_PROFILE_DIR";

const dir = process.env[PROFILE_DIR_ENV];
if (dir) {
  const session = new Session();
  session.connect();
  session.post("Profiler.enable");
  session.post("Profiler.setSamplingInterval", { interval: 1_000 });
  session.post("Profiler.start");
  process.on("exit", () => {
    // The in-process inspector answers synchronously, so this completes inside the exit handler.
    session.post("Profiler.stop", (err, res) => {
      if (!err) writeFileSync(join(dir, `CPU.${basename(process.argv[1] ?? "node", ".js")}.${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}
