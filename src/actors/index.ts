/** The speed layer: speed nodes hosting one actor per partition. */
export { createSpeedNode, type SpeedNode, type SpeedNodeOptions, type SpeedNodeDeps, type SpeedNodeState } from "./host.js";
export { createSpeedClient, SpeedActorUnavailableError, SpeedUnavailableReasons, SPEED_REQUEST_TIMEOUT_MS, type SpeedClient, type SpeedQuery, type SpeedQueryReply, type ActorPhase, type SpeedStatus, type SegmentInfo, type RestoredFrom } from "./protocol.js";
export type { RangeQuery, KeyStates } from "./speed_state.js";
export { createSnapshotStore, SnapshotFencedError, type SnapshotStore } from "./snapshot_store.js";
export { decodeSnapshot } from "./snapshot.js";
