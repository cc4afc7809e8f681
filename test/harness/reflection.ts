/**
 * A strict gRPC reflection client for tests, built like grpcurl's: it asks the server for the
 * files of every listed service, loads them into @bufbuild/protobuf's registry (which refuses
 * unresolved or unqualified references, duplicate files and bad names), and calls methods with
 * requests made from those descriptors alone (JSON in, JSON out, as `grpcurl -d` does).
 *
 * Requests and responses of the reflection protocol itself are encoded with protobufjs from the
 * reflection.proto that @grpc/reflection ships, independently of the server's own codec.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { Client, credentials, loadPackageDefinition, type ClientDuplexStream, type ServiceError } from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { createFileRegistry, fromBinary, fromJson, toBinary, toJson, type DescMethod, type FileRegistry, type JsonValue, type Message } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";

export type ReflectionVersion = "v1" | "v1alpha";

/** A ServerReflectionRequest as protobufjs takes it (proto field names). */
export type ReflectionRequestJs =
  | { file_by_filename: string }
  | { file_containing_symbol: string }
  | { file_containing_extension: { containing_type: string; extension_number: number } }
  | { all_extension_numbers_of_type: string }
  | { list_services: string };

/** A ServerReflectionResponse as protobufjs decodes it (proto field names, bytes as Buffer). */
export interface ReflectionResponseJs {
  valid_host?: string;
  original_request?: Record<string, unknown>;
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  all_extension_numbers_response?: { base_type_name: string; extension_number: number[] };
  list_services_response?: { service: { name: string }[] };
  error_response?: { error_code: number; error_message: string };
}

/** One reflection stream: each ask() is answered in turn. */
export interface ReflectionClient {
  ask(req: ReflectionRequestJs): Promise<ReflectionResponseJs>;
  /** The FileDescriptorProtos of a file_descriptor_response; throws on any other answer. */
  files(req: ReflectionRequestJs): Promise<FileDescriptorProto[]>;
  close(): void;
}

function reflectionProtoPath(version: ReflectionVersion): string {
  const pkgJson = createRequire(import.meta.url).resolve("@grpc/reflection/package.json");
  return join(dirname(pkgJson), `build/proto/grpc/reflection/${version}/reflection.proto`);
}

type StreamCtor = new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => Client & {
  ServerReflectionInfo(): ClientDuplexStream<ReflectionRequestJs, ReflectionResponseJs>;
};

/** Opens a reflection stream to `address` speaking grpc.reflection.<version>.ServerReflection. */
export function openReflection(address: string, version: ReflectionVersion): ReflectionClient {
  const def = protoLoader.loadSync(reflectionProtoPath(version), { keepCase: true, longs: Number, enums: Number, defaults: false, oneofs: false });
  const pkg = loadPackageDefinition(def) as unknown as { grpc: { reflection: Record<ReflectionVersion, { ServerReflection: StreamCtor }> } };
  const client = new pkg.grpc.reflection[version].ServerReflection(address, credentials.createInsecure());
  const call = client.ServerReflectionInfo();
  const waiting: { resolve(r: ReflectionResponseJs): void; reject(e: Error): void }[] = [];
  call.on("data", (res: ReflectionResponseJs) => waiting.shift()?.resolve(res));
  call.on("error", (err: Error) => {
    for (const w of waiting.splice(0)) w.reject(err);
  });
  const ask = (req: ReflectionRequestJs) =>
    new Promise<ReflectionResponseJs>((resolve, reject) => {
      waiting.push({ resolve, reject });
      call.write(req);
    });
  return {
    ask,
    async files(req) {
      const res = await ask(req);
      if (!res.file_descriptor_response) throw new Error(`reflection ${version} ${JSON.stringify(req)}: no files in ${JSON.stringify(res.error_response ?? res)}`);
      return res.file_descriptor_response.file_descriptor_proto.map((b) => fromBinary(FileDescriptorProtoSchema, b));
    },
    close() {
      call.end();
      client.close();
    },
  };
}

/** What a grpcurl-like client learns from reflection alone. */
export interface Reflected {
  readonly services: string[];
  /** Every file the server sent, by name. */
  readonly files: Map<string, FileDescriptorProto>;
  /** The strict registry made from them. */
  readonly registry: FileRegistry;
}

/** Lists the services, fetches the files of each (with their dependencies), loads them strictly. */
export async function reflect(r: ReflectionClient): Promise<Reflected> {
  const listed = await r.ask({ list_services: "*" });
  if (!listed.list_services_response) throw new Error(`list_services: ${JSON.stringify(listed.error_response)}`);
  const services = listed.list_services_response.service.map((s) => s.name);
  const files = new Map<string, FileDescriptorProto>();
  for (const s of services) for (const f of await r.files({ file_containing_symbol: s })) files.set(f.name, f);
  const registry = createFileRegistry({ $typeName: "google.protobuf.FileDescriptorSet", file: importsFirst(files) });
  return { services, files, registry };
}

/** The files with each one's imports before it (the registry resolves imports as it adds files). A missing import is left for the registry to refuse. */
function importsFirst(files: ReadonlyMap<string, FileDescriptorProto>): FileDescriptorProto[] {
  const out: FileDescriptorProto[] = [];
  const visit = (f: FileDescriptorProto) => {
    if (out.includes(f)) return;
    for (const d of f.dependency) {
      const dep = files.get(d);
      if (dep) visit(dep);
    }
    out.push(f);
  };
  for (const f of files.values()) visit(f);
  return out;
}

/** The unary/server-streaming method `service/method` of a reflected registry. */
export function reflectedMethod(registry: FileRegistry, service: string, method: string): DescMethod {
  const s = registry.getService(service);
  const m = s?.methods.find((x) => x.name === method);
  if (!m) throw new Error(`reflected registry has no method ${service}/${method}`);
  return m;
}

const toBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** Calls a unary method with a JSON request (as `grpcurl -d` does); answers the response as JSON. */
export function callJson(address: string, method: DescMethod, request: JsonValue): Promise<JsonValue> {
  const client = new Client(address, credentials.createInsecure());
  const req = fromJson(method.input, request);
  return new Promise<JsonValue>((resolve, reject) => {
    client.makeUnaryRequest(
      `/${method.parent.typeName}/${method.name}`,
      (m: Message) => toBuffer(toBinary(method.input, m)),
      (b: Buffer) => fromBinary(method.output, b),
      req,
      (err: ServiceError | null, res?: Message) => (err || !res ? reject(err ?? new Error("no response")) : resolve(toJson(method.output, res))),
    );
  }).finally(() => client.close());
}

/** Calls a server-streaming method with a JSON request; answers every response as JSON. */
export function callStreamJson(address: string, method: DescMethod, request: JsonValue): Promise<JsonValue[]> {
  const client = new Client(address, credentials.createInsecure());
  const req = fromJson(method.input, request);
  return new Promise<JsonValue[]>((resolve, reject) => {
    const out: JsonValue[] = [];
    const call = client.makeServerStreamRequest(
      `/${method.parent.typeName}/${method.name}`,
      (m: Message) => toBuffer(toBinary(method.input, m)),
      (b: Buffer) => fromBinary(method.output, b),
      req,
    );
    call.on("data", (res: Message) => out.push(toJson(method.output, res)));
    call.on("error", reject);
    call.on("end", () => resolve(out));
  }).finally(() => client.close());
}

/** A FileDescriptorSet's files (e.g. `buf build` output). */
export function filesOfSet(bytes: Uint8Array): FileDescriptorProto[] {
  return fromBinary(FileDescriptorSetSchema, bytes).file;
}
