/**
 * The faults, each made from outside the runtime the way it happens to an
 * operator: a signal to a process, a NATS node killed, paused or restarted.
 * inject() makes the fault and returns how to heal it (after the fault's own
 * hold time where it has one).
 */
import type { FaultCluster } from "./cluster.js";
import { FAULT_TIMINGS } from "./cluster.js";

export interface Injected {
  /** What was hit, for the report. */
  readonly target: string;
  heal(): Promise<void>;
}

export interface Fault {
  readonly id: string;
  readonly title: string;
  inject(c: FaultCluster, rand: () => number, quick: boolean): Promise<Injected>;
}

const pick = <T>(xs: readonly T[], rand: () => number): T => xs[Math.floor(rand() * xs.length)]!;
const hold = (ms: number) => new Promise((r) => setTimeout(r, ms));

function signal(pid: number, s: NodeJS.Signals): void {
  try {
    process.kill(pid, s);
  } catch {
    // already gone: nothing to signal
  }
}

/** Kills role process `nodeId` and heals by starting it again under the same id. */
async function killRole(c: FaultCluster, nodeId: string): Promise<Injected> {
  await c.processes.get(nodeId)!.kill();
  return { target: nodeId, heal: async () => void (await c.restart(nodeId)) };
}

export const FAULTS: readonly Fault[] = [
  {
    id: "F1",
    title: "SIGKILL a speed node mid-segment",
    inject: (c, rand) => killRole(c, pick([...c.processes.keys()].filter((k) => k.startsWith("speed")), rand)),
  },
  {
    id: "F2",
    title: "SIGKILL the archiver's process (archiver, executor, serving; chDB embedded) at a random moment",
    inject: (c) => killRole(c, "main"),
  },
  {
    id: "F3",
    title: "SIGKILL the leader coordinator (runs every 2 s: usually mid-run)",
    inject: async (c) => killRole(c, (await c.leader()).nodeId),
  },
  {
    id: "F4",
    title: "SIGSTOP the leader coordinator past its lease, then SIGCONT (zombie)",
    async inject(c) {
      const leader = await c.leader();
      signal(leader.pid, "SIGSTOP");
      return {
        target: leader.nodeId,
        async heal() {
          await hold(2 * FAULT_TIMINGS.leaderLeaseMs);
          signal(leader.pid, "SIGCONT");
        },
      };
    },
  },
  {
    id: "F7",
    title: "SIGKILL the NATS node that leads the event stream, restart it",
    async inject(c) {
      const node = await c.streamLeader();
      await node.kill("SIGKILL");
      return {
        target: node.name,
        async heal() {
          await hold(3_000);
          await node.restart();
        },
      };
    },
  },
  {
    id: "F12",
    title: "SIGSTOP the NATS node that leads the event stream for 10 s",
    async inject(c, _rand, quick) {
      const node = await c.streamLeader();
      await node.kill("SIGSTOP");
      return {
        target: node.name,
        async heal() {
          await hold(quick ? 5_000 : 10_000);
          await node.kill("SIGCONT");
        },
      };
    },
  },
  {
    id: "F16",
    title: "SIGSTOP a speed node longer than the node timeout and any ack wait, then SIGCONT",
    async inject(c, rand) {
      const id = pick([...c.processes.keys()].filter((k) => k.startsWith("speed")), rand);
      const node = c.processes.get(id)!;
      signal(node.pid, "SIGSTOP");
      return {
        target: id,
        async heal() {
          await hold(4 * FAULT_TIMINGS.nodeTimeoutMs);
          signal(node.pid, "SIGCONT");
        },
      };
    },
  },
  {
    id: "F20",
    title: "restart a nats-server (SIGTERM, start again) under load",
    async inject(c, rand) {
      const node = pick(c.nats.nodes, rand);
      await node.kill("SIGTERM");
      return { target: node.name, heal: () => node.restart() };
    },
  },
];
