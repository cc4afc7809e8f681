/**
 * A network on this machine for faults that cut links: a bridge in the root
 * namespace (the hub, an address every process here can reach) and one network
 * namespace per host, joined to it by a veth pair. A process started under
 * `host.command` (ip netns exec) sees only its namespace; cutting the host's
 * veth (link down) isolates it from everything else while it runs on, as a
 * pulled cable or a partition does. No traffic leaves the machine: the bridge
 * has no other port. Needs root and iproute2.
 *
 * Delay (tc netem) is not offered: this machine's kernel has no queueing
 * disciplines at all (`tc qdisc add ... netem` says "Specified qdisc kind is
 * unknown", and it boots with `nomodule`).
 */
import { execFileSync } from "node:child_process";

export interface LabHost {
  readonly name: string;
  /** Its address on the lab network. */
  readonly ip: string;
  /** Prefix that runs a command inside the host's namespace. */
  readonly command: readonly string[];
  /** Takes the host's link down: nothing reaches it, nothing leaves it. */
  cut(): void;
  /** Brings the link back up. */
  reconnect(): void;
}

export interface NetLab {
  /** The root namespace's address on the lab network: where processes outside any host listen. */
  readonly hubIp: string;
  addHost(name: string): LabHost;
  close(): void;
}

const ip = (...args: string[]) => execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });

/** Why a lab cannot be made here, or undefined when it can (root, iproute2, network namespaces). */
export function netLabUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "network namespaces need root";
  try {
    execFileSync("ip", ["netns", "list"], { stdio: "ignore" });
  } catch (err) {
    return `\`ip netns\` does not work here (${(err as Error).message}): apt-get install iproute2`;
  }
  return undefined;
}

/**
 * A new lab on subnet 10.213.<n>.0/24, names tagged with this process's pid so that labs of
 * several runs (or one left by a killed run) do not clash.
 */
export function createNetLab(): NetLab {
  const tag = String(process.pid % 100_000);
  const subnet = `10.213.${process.pid % 250}`;
  const bridge = `lmb${tag}`;
  const hosts: { ns: string }[] = [];
  ip("link", "add", bridge, "type", "bridge");
  const lab: NetLab = {
    hubIp: `${subnet}.1`,
    addHost(name) {
      const i = hosts.length + 2;
      const ns = `lmb${tag}-${name}`;
      const [outer, inner] = [`lmb${tag}h${i}`, `lmb${tag}n${i}`];
      const inNs = (...args: string[]) => ip("netns", "exec", ns, "ip", ...args);
      ip("netns", "add", ns);
      hosts.push({ ns });
      ip("link", "add", outer, "type", "veth", "peer", "name", inner);
      ip("link", "set", inner, "netns", ns);
      ip("link", "set", outer, "master", bridge);
      ip("link", "set", outer, "up");
      inNs("addr", "add", `${subnet}.${i}/24`, "dev", inner);
      inNs("link", "set", inner, "up");
      inNs("link", "set", "lo", "up");
      return {
        name,
        ip: `${subnet}.${i}`,
        command: ["ip", "netns", "exec", ns],
        cut: () => ip("link", "set", outer, "down"),
        reconnect: () => ip("link", "set", outer, "up"),
      };
    },
    close() {
      for (const h of hosts) {
        try {
          ip("netns", "del", h.ns); // takes its veth pair with it
        } catch {
          // already gone
        }
      }
      try {
        ip("link", "del", bridge);
      } catch {
        // already gone
      }
    },
  };
  try {
    ip("addr", "add", `${lab.hubIp}/24`, "dev", bridge);
    ip("link", "set", bridge, "up");
  } catch (err) {
    lab.close();
    throw err;
  }
  return lab;
}
