/**
 * Command-line options of `npm run bench`, resolved once into sizes that every
 * figure reads. Unknown options are refused with the list of known ones.
 */

/** Figures in the order they run. */
export const FIGURE_NAMES = ["ingest", "freshness", "query", "batch", "archiver", "memory", "failover", "handover", "scale"] as const;
export type FigureName = (typeof FIGURE_NAMES)[number];
/** Figures that run only when named in --only: they take far longer than the rest together. */
export const OPT_IN_FIGURES: readonly FigureName[] = ["scale"];
/** What a run without --only measures. */
export const DEFAULT_FIGURES: readonly FigureName[] = FIGURE_NAMES.filter((n) => !OPT_IN_FIGURES.includes(n));

/** Events per repetition of the streaming figures (ingest, archiver, memory) in a full run. */
export const FULL_EVENTS = 100_000;
/** The same in --quick mode. */
export const QUICK_EVENTS = 10_000;
/** Master-dataset sizes of the batch-run figure. */
export const FULL_BATCH_SIZES = [1_000_000, 5_000_000] as const;
export const QUICK_BATCH_SIZES = [100_000, 300_000] as const;
/** Master-dataset sizes of the scale figure's batch curve; --large adds LARGE_SCALE_BATCH_ROWS. */
export const FULL_SCALE_BATCH_ROWS = [1_000_000, 5_000_000, 20_000_000] as const;
export const LARGE_SCALE_BATCH_ROWS = 50_000_000;
export const QUICK_SCALE_BATCH_ROWS = [100_000, 200_000, 400_000] as const;
/** Repetitions of every measurement (after a warm-up). */
export const DEFAULT_REPS = 3;

/** How much work each figure does per repetition. */
export interface Sizes {
  /** Events per repetition for ingest, archiver and memory. */
  readonly events: number;
  /** Freshness probes per repetition. */
  readonly freshnessProbes: number;
  /** Background events/s while freshness is probed. */
  readonly freshnessBackgroundRate: number;
  /** Events in the data set the queries read (batch view + speed segments). */
  readonly queryDataEvents: number;
  /** Sequential single-key calls per repetition (latency at concurrency 1). */
  readonly queryLatencyCalls: number;
  /** Calls per repetition of a throughput measurement (concurrency 32 and 64). */
  readonly queryThroughputCalls: number;
  /** Sequential 100-key Query calls per repetition. */
  readonly queryFanoutOps: number;
  /** Master-dataset sizes of the batch-run figure, ascending. */
  readonly batchSizes: readonly number[];
  readonly scale: ScaleSizes;
}

/** Sizes of the scale figure ("how cost grows"), each list ascending. */
export interface ScaleSizes {
  /** Master rows of the batch-run curve. */
  readonly batchRows: readonly number[];
  /** Batch view sizes (keys × windows) of the query curve. */
  readonly viewCells: readonly number[];
  /** Sequential one-key calls per repetition and view size. */
  readonly queryCalls: number;
  /** Events since the cut of the speed-memory curve, one watermark after each. */
  readonly memoryEvents: readonly number[];
  /** Distinct keys of the speed-memory curve by keys. */
  readonly memoryKeys: readonly number[];
  /** Events per point of the speed-memory curve by keys. */
  readonly memoryKeyEvents: number;
  /** At most this many repetitions of the speed-memory curves (each a fresh node per dedupe horizon). */
  readonly memoryRepsMax: number;
  /** Events per repetition of the ingest curves. */
  readonly ingestEvents: number;
  readonly ingestPartitions: readonly number[];
  readonly ingestSpeedNodes: readonly number[];
  /** Background loads of the freshness curve, as shares of the measured end-to-end ingest rate. */
  readonly freshnessLoads: readonly number[];
  /** Freshness probes per repetition and load. */
  readonly freshnessProbes: number;
}

/** The resolved options: nothing optional past parseOptions(). */
export interface BenchOptions {
  readonly quick: boolean;
  /** The scale figure's batch curve goes on to LARGE_SCALE_BATCH_ROWS. */
  readonly large: boolean;
  readonly only: readonly FigureName[];
  readonly reps: number;
  readonly outDir: string;
  /** Where children (speed nodes, bench helpers) write --cpu-prof profiles; null: no profiling. */
  readonly profileDir: string | null;
  readonly sizes: Sizes;
}

/** Printed by --help and with a usage error. */
export const USAGE = `usage: npm run bench -- [--quick] [--large] [--events N] [--only NAME[,NAME...]] [--reps N] [--out DIR] [--profile-dir DIR]

  --quick            a short run (small sizes) that CI executes to keep the bench working; asserts nothing about time
  --large            the scale figure's batch curve goes on to ${LARGE_SCALE_BATCH_ROWS / 1e6}M master rows (needs ~10 GB of disk and memory)
  --events N         events per repetition for ingest, archiver and memory (default ${FULL_EVENTS}, quick ${QUICK_EVENTS})
  --only NAMES       run only these figures: ${FIGURE_NAMES.join(", ")}
                     (${OPT_IN_FIGURES.join(", ")} only when named: a run without --only leaves it out)
  --reps N           repetitions of each measurement after the warm-up (default ${DEFAULT_REPS})
  --out DIR          where the JSON and SVG go (default bench/results)
  --profile-dir DIR  child processes (speed nodes, bench helpers) write CPU profiles there (node --cpu-prof);
                     profile this process too with: node --cpu-prof --cpu-prof-dir=DIR dist/bench/run.js ...`;

/** A bad command line: the message names the option and what was allowed. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

function intArg(name: string, raw: string | undefined, min: number): number {
  const n = Number(raw);
  if (raw === undefined || !/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min) throw new UsageError(`${name} expects an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

/** @throws UsageError naming the bad option and what was allowed. */
export function parseOptions(argv: readonly string[], defaultOutDir: string): BenchOptions | "help" {
  let quick = false;
  let large = false;
  let events: number | undefined;
  let only: readonly FigureName[] = DEFAULT_FIGURES;
  let reps = DEFAULT_REPS;
  let outDir = defaultOutDir;
  let profileDir: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.includes("=") ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)] : [a, undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case "--help":
      case "-h":
        return "help";
      case "--quick":
        quick = true;
        break;
      case "--large":
        large = true;
        break;
      case "--events":
        events = intArg("--events", value(), 1_000);
        break;
      case "--reps":
        reps = intArg("--reps", value(), 1);
        break;
      case "--out":
        outDir = value() ?? "";
        if (!outDir) throw new UsageError("--out expects a directory");
        break;
      case "--profile-dir":
        profileDir = value() ?? "";
        if (!profileDir) throw new UsageError("--profile-dir expects a directory");
        break;
      case "--only": {
        const names = (value() ?? "").split(",").map((s) => s.trim()).filter(Boolean);
        for (const n of names) if (!(FIGURE_NAMES as readonly string[]).includes(n)) throw new UsageError(`--only: unknown figure ${JSON.stringify(n)}; known: ${FIGURE_NAMES.join(", ")}`);
        if (names.length === 0) throw new UsageError(`--only expects figure names: ${FIGURE_NAMES.join(", ")}`);
        only = FIGURE_NAMES.filter((n) => names.includes(n));
        break;
      }
      default:
        throw new UsageError(`unknown option ${JSON.stringify(a)}\n${USAGE}`);
    }
  }
  const n = events ?? (quick ? QUICK_EVENTS : FULL_EVENTS);
  const sizes: Sizes = quick
    ? {
        events: n,
        freshnessProbes: 60,
        freshnessBackgroundRate: 1_000,
        queryDataEvents: 10_000,
        queryLatencyCalls: 100,
        queryThroughputCalls: 600,
        queryFanoutOps: 30,
        batchSizes: QUICK_BATCH_SIZES,
        scale: {
          batchRows: large ? [...QUICK_SCALE_BATCH_ROWS, 1_000_000] : QUICK_SCALE_BATCH_ROWS,
          viewCells: [1_000, 10_000],
          queryCalls: 100,
          memoryEvents: [2_000, 8_000],
          memoryKeys: [100, 2_000],
          memoryKeyEvents: 5_000,
          memoryRepsMax: 1,
          ingestEvents: 5_000,
          ingestPartitions: [4, 8, 32],
          ingestSpeedNodes: [1, 2, 3],
          freshnessLoads: [0.25, 0.5, 0.75],
          freshnessProbes: 30,
        },
      }
    : {
        events: n,
        freshnessProbes: 300,
        freshnessBackgroundRate: 1_000,
        queryDataEvents: 50_000,
        queryLatencyCalls: 1_000,
        queryThroughputCalls: 4_000,
        queryFanoutOps: 200,
        batchSizes: FULL_BATCH_SIZES,
        scale: {
          batchRows: large ? [...FULL_SCALE_BATCH_ROWS, LARGE_SCALE_BATCH_ROWS] : FULL_SCALE_BATCH_ROWS,
          viewCells: [10_000, 100_000, 1_000_000],
          queryCalls: 1_000,
          memoryEvents: [25_000, 50_000, 100_000],
          memoryKeys: [100, 1_000, 10_000, 50_000],
          memoryKeyEvents: 25_000,
          memoryRepsMax: Number.POSITIVE_INFINITY,
          ingestEvents: 50_000,
          ingestPartitions: [4, 8, 16, 32],
          ingestSpeedNodes: [1, 2, 3],
          freshnessLoads: [0.25, 0.5, 0.75],
          freshnessProbes: 200,
        },
      };
  return { quick, large, only, reps, outDir, profileDir, sizes };
}
