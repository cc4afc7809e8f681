/**
 * Reading JetStream publish acks (src/ingest/ack_publisher.ts parsePubAck): the byte-level fast
 * path against the spellings servers send, and the slow path for refusals and garbage.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parsePubAck, PublishRejectedError } from "../../src/ingest/ack_publisher.js";

const ack = (text: string) => parsePubAck("p.events.3", new TextEncoder().encode(text));

test("a publish ack is read with or without spaces, with its duplicate flag", () => {
  // The first two are what nats-server 2.9 sends; the others are spacings JSON allows.
  assert.deepEqual(ack('{"stream":"D", "seq":1}'), { seq: 1, duplicate: false });
  assert.deepEqual(ack('{"stream":"D", "seq":1,"duplicate": true}'), { seq: 1, duplicate: true });
  assert.deepEqual(ack('{"stream":"D","seq":42,"duplicate":true}'), { seq: 42, duplicate: true });
  assert.deepEqual(ack('{"stream":"D","seq" : 7 ,"duplicate" : false}'), { seq: 7, duplicate: false });
  assert.deepEqual(ack('{"stream":"D","domain":"hub","seq":9007199254740991}'), { seq: 9007199254740991, duplicate: false });
});

test("a publish ack read from a slice of a larger buffer reads only its own bytes", () => {
  const whole = new TextEncoder().encode('xx{"stream":"D", "seq":5}{"stream":"D", "seq":6,"duplicate": true}');
  assert.deepEqual(parsePubAck("s", whole.subarray(2, 25)), { seq: 5, duplicate: false });
});

test("a refusal is a PublishRejectedError with the server's code and text", () => {
  const r = ack('{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"},"stream":"D","seq":0}');
  assert.ok(r instanceof PublishRejectedError);
  assert.equal(r.code, 503);
  assert.match(r.message, /p\.events\.3.*maximum messages exceeded/);
});

test("an answer that is not an ack is an error naming the subject and what came", () => {
  for (const text of ["", "not json", '{"stream":"D"}', '{"stream":"D","seq":"x"}']) {
    const r = ack(text);
    assert.ok(r instanceof Error && !(r instanceof PublishRejectedError), text);
    assert.match(r.message, /unexpected publish ack for p\.events\.3/);
  }
});
