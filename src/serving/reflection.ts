/**
 * gRPC server reflection (grpc.reflection.v1 and v1alpha) that serves the file descriptors
 * exactly as buf compiles them from proto/: real file names (lambda/v1/serving.proto,
 * google/protobuf/timestamp.proto, ...), declared dependencies, fully qualified type names,
 * proto field names with protoc's json_name, map entry types, and the comments.
 *
 * Why not @grpc/reflection: it takes a proto-loader package definition, and proto-loader
 * makes that definition's FileDescriptorProtos by turning protobufjs's reflection objects back
 * into descriptors (`root.toDescriptor("proto3")`), also when it loads a FileDescriptorSet with
 * `loadFileDescriptorSetFromBuffer`. Either way the files come out merged per package
 * (`lambda_v1.proto`, or serving.proto folded into admin.proto), with no dependencies, relative
 * type names (`GroupEntry`, `KeyAnswer`), no json_name and, without keepCase, camelCase field
 * names (grpc/grpc-node#2958, fullstorydev/grpcurl#459). grpcurl and any client that builds a
 * strict registry refuse those. The protocol itself is small (one bidirectional stream, each
 * request answered in turn), so this module implements it over the descriptor set that
 * `npm run gen` writes to src/gen/descriptors.ts and sends each FileDescriptorProto byte for
 * byte as buf wrote it.
 *
 * Answers follow grpc-go's and grpc C++'s servers:
 * - list_services: the services the server registered, by full name, sorted.
 * - file_by_filename / file_containing_symbol: the file, then every file it imports,
 *   transitively (each once). A symbol is any full name: service, method, message, nested
 *   message, field, oneof, enum, enum value, extension.
 * - file_containing_extension: the file declaring that extension; NOT_FOUND otherwise (these
 *   files declare none).
 * - all_extension_numbers_of_type: the numbers (here always none) for a known message;
 *   NOT_FOUND for an unknown one.
 * - An unknown file or symbol is an error_response with NOT_FOUND, and the stream stays open.
 * v1alpha has the same messages and field numbers as v1, so one handler serves both names.
 */
import type { Server, ServerDuplexStream, ServiceDefinition } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import { fromBinary } from "@bufbuild/protobuf";
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { FileDescriptorSetSchema, type DescriptorProto, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { FILE_DESCRIPTOR_SET_BASE64 } from "../gen/descriptors.js";
import { ensureError } from "../core/errors.js";

/** The reflection services this module adds, by full name. */
export const REFLECTION_SERVICES = ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"] as const;

/** The generated descriptor set cannot back reflection as it stands (src/gen is stale or hand-edited). */
export class DescriptorSetError extends Error {
  override readonly name = "DescriptorSetError";
  constructor(
    /** The file or service concerned. */
    readonly subject: string,
    readonly reason: string,
  ) {
    super(`reflection descriptor set: ${subject} ${reason}; run npm run gen`);
  }
}

/** One reflection request, by the kind its message_request oneof holds. */
export type ReflectionRequest =
  | { kind: "file_by_filename"; filename: string }
  | { kind: "file_containing_symbol"; symbol: string }
  | { kind: "file_containing_extension"; containingType: string; extensionNumber: number }
  | { kind: "all_extension_numbers_of_type"; type: string }
  | { kind: "list_services" }
  | { kind: "none" };

/** What a request is answered with: a ServerReflectionResponse's message_response oneof. */
export type ReflectionAnswer =
  | { kind: "files"; files: readonly Uint8Array[] }
  | { kind: "extension_numbers"; baseTypeName: string; numbers: readonly number[] }
  | { kind: "services"; names: readonly string[] }
  | { kind: "error"; code: status; message: string };

/** The generated descriptor set, indexed by file name and by every full name it declares. */
export interface DescriptorIndex {
  /** Each FileDescriptorProto as buf serialized it. */
  readonly raw: ReadonlyMap<string, Uint8Array>;
  readonly files: ReadonlyMap<string, FileDescriptorProto>;
  /** Full name (no leading dot) -> the file declaring it. */
  readonly symbols: ReadonlyMap<string, string>;
  /** Full names of the messages (for all_extension_numbers_of_type). */
  readonly messages: ReadonlySet<string>;
  /** Extendee full name -> extension number -> file. */
  readonly extensions: ReadonlyMap<string, ReadonlyMap<number, string>>;
  readonly services: readonly string[];
}

/** Indexes a serialized FileDescriptorSet; keeps each file's own bytes. */
export function indexDescriptorSet(set: Uint8Array): DescriptorIndex {
  // Split the set on the wire so each file is sent exactly as written (field 1, repeated).
  const rawList: Uint8Array[] = [];
  const reader = new BinaryReader(set);
  while (reader.pos < reader.len) {
    const [field, wire] = reader.tag();
    if (field === 1 && wire === WireType.LengthDelimited) rawList.push(reader.bytes());
    else reader.skip(wire, field);
  }
  const decoded = fromBinary(FileDescriptorSetSchema, set).file;
  const raw = new Map<string, Uint8Array>();
  const files = new Map<string, FileDescriptorProto>();
  const symbols = new Map<string, string>();
  const messages = new Set<string>();
  const extensions = new Map<string, Map<number, string>>();
  const services: string[] = [];
  decoded.forEach((file, i) => {
    if (files.has(file.name)) throw new DescriptorSetError(file.name, "appears twice");
    files.set(file.name, file);
    raw.set(file.name, rawList[i]!);
    const prefix = file.package === "" ? "" : `${file.package}.`;
    const add = (name: string) => symbols.set(name, file.name);
    const addExtensions = (exts: FileDescriptorProto["extension"], scope: string) => {
      for (const ext of exts) {
        add(`${scope}${ext.name}`);
        const extendee = ext.extendee.replace(/^\./, "");
        const byNumber = extensions.get(extendee) ?? new Map<number, string>();
        byNumber.set(ext.number, file.name);
        extensions.set(extendee, byNumber);
      }
    };
    // Enum values are scoped beside their enum, as in C++ (pkg.Msg.SERVING, not pkg.Msg.Status.SERVING).
    const addEnums = (enums: FileDescriptorProto["enumType"], scope: string) => {
      for (const e of enums) {
        add(`${scope}${e.name}`);
        for (const v of e.value) add(`${scope}${v.name}`);
      }
    };
    const addMessages = (list: readonly DescriptorProto[], scope: string) => {
      for (const m of list) {
        const full = `${scope}${m.name}`;
        add(full);
        messages.add(full);
        for (const f of m.field) add(`${full}.${f.name}`);
        for (const o of m.oneofDecl) add(`${full}.${o.name}`);
        addEnums(m.enumType, `${full}.`);
        addExtensions(m.extension, `${full}.`);
        addMessages(m.nestedType, `${full}.`);
      }
    };
    addMessages(file.messageType, prefix);
    addEnums(file.enumType, prefix);
    addExtensions(file.extension, prefix);
    for (const s of file.service) {
      const full = `${prefix}${s.name}`;
      add(full);
      services.push(full);
      for (const m of s.method) add(`${full}.${m.name}`);
    }
  });
  for (const file of files.values()) {
    for (const dep of file.dependency) if (!files.has(dep)) throw new DescriptorSetError(file.name, `imports ${dep}, which is not in the set`);
  }
  return { raw, files, symbols, messages, extensions, services };
}

/** The file and everything it imports, transitively, the file first and each once. */
function withDependencies(index: DescriptorIndex, name: string): Uint8Array[] {
  const order: string[] = [];
  const visit = (n: string) => {
    if (order.includes(n)) return;
    order.push(n);
    for (const dep of index.files.get(n)?.dependency ?? []) visit(dep);
  };
  visit(name);
  // indexDescriptorSet checked that every import is in the set.
  return order.map((n) => index.raw.get(n)!);
}

/** Answers one request (pure: the index in, the answer out). `services` is what list_services lists. */
export function answerReflection(index: DescriptorIndex, services: readonly string[], req: ReflectionRequest): ReflectionAnswer {
  const notFound = (message: string): ReflectionAnswer => ({ kind: "error", code: status.NOT_FOUND, message });
  switch (req.kind) {
    case "list_services":
      return { kind: "services", names: services };
    case "file_by_filename":
      return index.files.has(req.filename) ? { kind: "files", files: withDependencies(index, req.filename) } : notFound(`file ${JSON.stringify(req.filename)} not found`);
    case "file_containing_symbol": {
      const file = index.symbols.get(req.symbol.replace(/^\./, ""));
      return file !== undefined ? { kind: "files", files: withDependencies(index, file) } : notFound(`symbol ${JSON.stringify(req.symbol)} not found`);
    }
    case "file_containing_extension": {
      const file = index.extensions.get(req.containingType)?.get(req.extensionNumber);
      return file !== undefined
        ? { kind: "files", files: withDependencies(index, file) }
        : notFound(`extension ${req.extensionNumber} of ${JSON.stringify(req.containingType)} not found`);
    }
    case "all_extension_numbers_of_type":
      return index.messages.has(req.type)
        ? { kind: "extension_numbers", baseTypeName: req.type, numbers: [...(index.extensions.get(req.type)?.keys() ?? [])].sort((a, b) => a - b) }
        : notFound(`message type ${JSON.stringify(req.type)} not found`);
    case "none":
      return { kind: "error", code: status.INVALID_ARGUMENT, message: "message_request: none of its fields is set" };
  }
}

/** Decodes a ServerReflectionRequest (v1 and v1alpha share the layout). Throws on malformed bytes. */
export function decodeReflectionRequest(bytes: Uint8Array): { host: string; request: ReflectionRequest } {
  const r = new BinaryReader(bytes);
  let host = "";
  // The oneof keeps the last member on the wire, as protobuf's merge rules say.
  let req: ReflectionRequest = { kind: "none" };
  while (r.pos < r.len) {
    const [field, wire] = r.tag();
    switch (field) {
      case 1:
        host = r.string();
        break;
      case 3:
        req = { kind: "file_by_filename", filename: r.string() };
        break;
      case 4:
        req = { kind: "file_containing_symbol", symbol: r.string() };
        break;
      case 5: {
        const ext = new BinaryReader(r.bytes());
        let containingType = "";
        let extensionNumber = 0;
        while (ext.pos < ext.len) {
          const [f, w] = ext.tag();
          if (f === 1) containingType = ext.string();
          else if (f === 2) extensionNumber = ext.int32();
          else ext.skip(w, f);
        }
        req = { kind: "file_containing_extension", containingType, extensionNumber };
        break;
      }
      case 6:
        req = { kind: "all_extension_numbers_of_type", type: r.string() };
        break;
      case 7:
        r.string();
        req = { kind: "list_services" };
        break;
      default:
        r.skip(wire, field);
    }
  }
  return { host, request: req };
}

/** Encodes the ServerReflectionResponse for `answer`, echoing the request's bytes as original_request. */
export function encodeReflectionResponse(request: Uint8Array, host: string, answer: ReflectionAnswer): Uint8Array {
  const w = new BinaryWriter();
  if (host !== "") w.tag(1, WireType.LengthDelimited).string(host);
  w.tag(2, WireType.LengthDelimited).bytes(request);
  switch (answer.kind) {
    case "files":
      w.tag(4, WireType.LengthDelimited).fork();
      for (const f of answer.files) w.tag(1, WireType.LengthDelimited).bytes(f);
      w.join();
      break;
    case "extension_numbers":
      w.tag(5, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string(answer.baseTypeName);
      for (const n of answer.numbers) w.tag(2, WireType.Varint).int32(n);
      w.join();
      break;
    case "services":
      w.tag(6, WireType.LengthDelimited).fork();
      for (const name of answer.names) w.tag(1, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string(name).join();
      w.join();
      break;
    case "error":
      w.tag(7, WireType.LengthDelimited).fork().tag(1, WireType.Varint).int32(answer.code).tag(2, WireType.LengthDelimited).string(answer.message).join();
      break;
  }
  return w.finish();
}

const passThrough = (b: Buffer): Buffer => b;
const toBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

function serviceDefinition(service: string): ServiceDefinition {
  return {
    ServerReflectionInfo: {
      path: `/${service}/ServerReflectionInfo`,
      requestStream: true,
      responseStream: true,
      requestSerialize: passThrough,
      requestDeserialize: passThrough,
      responseSerialize: passThrough,
      responseDeserialize: passThrough,
    },
  };
}

let generated: DescriptorIndex | undefined;
/** The index of src/gen/descriptors.ts, built once per process. */
export function generatedDescriptors(): DescriptorIndex {
  generated ??= indexDescriptorSet(Buffer.from(FILE_DESCRIPTOR_SET_BASE64, "base64"));
  return generated;
}

/**
 * Adds grpc.reflection.v1.ServerReflection and grpc.reflection.v1alpha.ServerReflection to
 * `server`. `services` are the full names of the other services the server registered; the
 * listing has them and the two reflection services.
 * @throws DescriptorSetError when one of them has no descriptor (src/gen is stale).
 */
export function addReflection(server: Server, services: readonly string[]): void {
  const index = generatedDescriptors();
  const listed = [...services, ...REFLECTION_SERVICES].sort();
  for (const s of listed) if (!index.services.includes(s)) throw new DescriptorSetError(s, `is served but not described (the set describes ${index.services.join(", ")})`);
  const handler = (call: ServerDuplexStream<Buffer, Buffer>) => {
    call.on("data", (bytes: Buffer) => {
      let decoded: ReturnType<typeof decodeReflectionRequest> | undefined;
      try {
        decoded = decodeReflectionRequest(bytes);
      } catch (err) {
        // Bytes that do not parse as a request: say so in this request's answer and keep the stream.
        const answer: ReflectionAnswer = { kind: "error", code: status.INVALID_ARGUMENT, message: `malformed ServerReflectionRequest: ${ensureError(err).message}` };
        call.write(toBuffer(encodeReflectionResponse(bytes, "", answer)));
        return;
      }
      call.write(toBuffer(encodeReflectionResponse(bytes, decoded.host, answerReflection(index, listed, decoded.request))));
    });
    call.on("end", () => call.end());
  };
  for (const name of REFLECTION_SERVICES) server.addService(serviceDefinition(name), { ServerReflectionInfo: handler });
}
