/**
 * Bench helper process: the raw baseline of the speed layer. Plain ordered
 * JetStream consumers, one per partition subject, decode each message with
 * msgpackr and count it into a Map by article, nothing else. It runs as its
 * own process, as a speed node does.
 *
 * Calls: start {natsUrl, stream, subjects, expected} → consumers ready;
 * wait → resolves once `expected` events were counted; stop → consumers closed.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, type ConsumerMessages } from "@nats-io/jetstream";
import { unpack } from "msgpackr";
import { serveParent } from "./ipc.js";

interface Start {
  natsUrl: string;
  stream: string;
  subjects: string[];
  expected: number;
}

let nc: NatsConnection | undefined;
let consumers: ConsumerMessages[] = [];
let counted = 0;
let expected = Infinity;
/** Resolves the pending wait call, if any. */
const waiter: { done?: () => void } = {};
const byArticle = new Map<string, number>();

serveParent(
  {
    async start(b: Start) {
      nc ??= await connect({ servers: b.natsUrl, name: "bench raw consumer" });
      const js = jetstream(nc);
      counted = 0;
      waiter.done = undefined;
      expected = b.expected;
      byArticle.clear();
      consumers = [];
      for (const subject of b.subjects) {
        const c = await js.consumers.get(b.stream, { filter_subjects: subject });
        const messages = await c.consume();
        consumers.push(messages);
        void (async () => {
          for await (const m of messages) {
            const r = unpack(m.data) as { v?: { article_id?: string } };
            const k = r.v?.article_id ?? "";
            byArticle.set(k, (byArticle.get(k) ?? 0) + 1);
            if (++counted >= expected) waiter.done?.();
          }
        })();
      }
      return { subjects: b.subjects.length };
    },
    wait() {
      return new Promise<{ counted: number; keys: number }>((resolve) => {
        const finish = () => resolve({ counted, keys: byArticle.size });
        if (counted >= expected) finish();
        else waiter.done = finish;
      });
    },
    async stop() {
      await Promise.all(consumers.map((c) => c.close().catch(() => undefined))); // best effort: ephemeral consumers
      consumers = [];
      return {};
    },
  },
  async () => {
    await nc?.close();
  },
);
