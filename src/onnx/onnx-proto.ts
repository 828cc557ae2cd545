// A small protobuf encoder for ONNX ModelProto: enough to write the graphs the tracer and
// the benchmark produce (nodes, typed inputs/outputs, initializers inline or pointing into
// an external file such as a safetensors pack). Field numbers follow onnx/onnx.proto.
// Writing it here keeps protobufjs out of the app bundle and lets initializers reference
// bytes that are already downloaded instead of copying them into the graph.

/** TensorProto.DataType. */
export const OnnxDataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  BFLOAT16: 16,
} as const;
export type OnnxDataTypeCode = (typeof OnnxDataType)[keyof typeof OnnxDataType];

/** Bytes per element of each TensorProto.DataType code (absent: a type with no fixed size). */
export const BYTES_PER_ELEMENT: Partial<Record<number, number>> = {
  1: 4,
  2: 1,
  3: 1,
  4: 2,
  5: 2,
  6: 4,
  7: 8,
  9: 1,
  10: 2,
  11: 8,
  12: 4,
  13: 8,
  16: 2,
};

/** Default IR version: 10 is what opset 21 requires and what onnxruntime 1.30 reads. */
export const DEFAULT_IR_VERSION = 10;
export const DEFAULT_OPSET = 21;
export const MS_DOMAIN = 'com.microsoft';

export type OnnxAttribute =
  | { readonly type: 'int'; readonly value: number }
  | { readonly type: 'float'; readonly value: number }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'ints'; readonly value: readonly number[] }
  | { readonly type: 'floats'; readonly value: readonly number[] }
  | { readonly type: 'tensor'; readonly value: OnnxInitializer };

export const attrInt = (value: number): OnnxAttribute => ({ type: 'int', value });
export const attrFloat = (value: number): OnnxAttribute => ({ type: 'float', value });
export const attrString = (value: string): OnnxAttribute => ({ type: 'string', value });
export const attrInts = (value: readonly number[]): OnnxAttribute => ({ type: 'ints', value });
export const attrFloats = (value: readonly number[]): OnnxAttribute => ({ type: 'floats', value });
export const attrTensor = (value: OnnxInitializer): OnnxAttribute => ({ type: 'tensor', value });

export interface OnnxNode {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name?: string;
  /** Operator set domain; '' (default) is ai.onnx. */
  domain?: string;
  attributes?: Readonly<Record<string, OnnxAttribute>>;
}

/** A graph input or output: element type and shape (a string is a symbolic dimension). */
export interface OnnxValueInfo {
  name: string;
  elemType?: OnnxDataTypeCode;
  /** Omitted: rank unknown. */
  shape?: readonly (number | string)[];
}

/** Where an external initializer's bytes are: a file next to the model, byte range. */
export interface OnnxExternalLocation {
  location: string;
  offset: number;
  length: number;
}

/**
 * A constant tensor. Exactly one of `data` (stored in the model, little-endian raw bytes)
 * and `external` (stored in another file) must be given.
 */
export interface OnnxInitializer {
  name: string;
  dims: readonly number[];
  dataType: OnnxDataTypeCode;
  data?: ArrayBufferView;
  external?: OnnxExternalLocation;
}

export interface OnnxGraph {
  name?: string;
  nodes: readonly OnnxNode[];
  inputs: readonly OnnxValueInfo[];
  outputs: readonly OnnxValueInfo[];
  initializers?: readonly OnnxInitializer[];
  /** Shapes of intermediate values (optional; helps shape inference and debugging). */
  valueInfo?: readonly OnnxValueInfo[];
}

export interface OnnxModel {
  graph: OnnxGraph;
  irVersion?: number;
  /**
   * Opset per domain, e.g. { '': 21, 'com.microsoft': 1 }. Default: ai.onnx at
   * DEFAULT_OPSET, plus com.microsoft v1 when some node uses that domain.
   */
  opsets?: Readonly<Record<string, number>>;
  producerName?: string;
  producerVersion?: string;
  docString?: string;
  metadata?: Readonly<Record<string, string>>;
}

// ---------------------------------------------------------------- wire format

const WIRE_VARINT = 0;
const WIRE_FIXED32 = 5;
const WIRE_LEN = 2;

const utf8 = new TextEncoder();

/**
 * Protobuf writer that keeps byte chunks instead of growing one buffer, so large raw
 * tensors are copied once (at finish) and nested messages need no second pass.
 */
class Writer {
  private readonly parts: Uint8Array[] = [];
  private scratch = new Uint8Array(64);
  private used = 0;
  length = 0;

  private reserve(n: number): void {
    if (this.used + n > this.scratch.length) this.spill(Math.max(64, n));
  }

  private spill(nextSize = 64): void {
    if (this.used > 0) this.parts.push(this.scratch.subarray(0, this.used));
    this.scratch = new Uint8Array(nextSize);
    this.used = 0;
  }

  private byte(b: number): void {
    this.scratch[this.used++] = b;
    this.length++;
  }

  /** Unsigned varint of a non-negative safe integer. */
  private uvarint(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`onnx-proto: bad varint ${v}`);
    this.reserve(10);
    while (v >= 0x80) {
      this.byte((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.byte(v);
  }

  private tag(field: number, wire: number): void {
    this.uvarint(field * 8 + wire);
  }

  /** int64/int32 fields: negatives are ten-byte two's complement, as protobuf requires. */
  int(field: number, v: number): void {
    if (!Number.isSafeInteger(v)) throw new RangeError(`onnx-proto: field ${field}: ${v} is not an integer`);
    this.tag(field, WIRE_VARINT);
    if (v >= 0) {
      this.uvarint(v);
      return;
    }
    let u = BigInt.asUintN(64, BigInt(v));
    this.reserve(10);
    while (u >= 0x80n) {
      this.byte(Number(u & 0x7fn) | 0x80);
      u >>= 7n;
    }
    this.byte(Number(u));
  }

  float(field: number, v: number): void {
    this.tag(field, WIRE_FIXED32);
    this.reserve(4);
    new DataView(this.scratch.buffer, this.scratch.byteOffset + this.used, 4).setFloat32(0, v, true);
    this.used += 4;
    this.length += 4;
  }

  bytes(field: number, data: Uint8Array): void {
    this.tag(field, WIRE_LEN);
    this.uvarint(data.byteLength);
    if (data.byteLength <= 256) {
      this.reserve(data.byteLength);
      this.scratch.set(data, this.used);
      this.used += data.byteLength;
    } else {
      this.spill();
      this.parts.push(data);
    }
    this.length += data.byteLength;
  }

  string(field: number, s: string): void {
    this.bytes(field, utf8.encode(s));
  }

  message(field: number, sub: Writer): void {
    this.tag(field, WIRE_LEN);
    this.uvarint(sub.length);
    this.spill();
    for (const p of sub.chunks()) this.parts.push(p);
    this.length += sub.length;
  }

  chunks(): Uint8Array[] {
    this.spill();
    return this.parts;
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const p of this.chunks()) {
      out.set(p, o);
      o += p.byteLength;
    }
    return out;
  }
}

// ---------------------------------------------------------------- messages

function stringEntry(key: string, value: string): Writer {
  const w = new Writer();
  w.string(1, key);
  w.string(2, value);
  return w;
}

function tensorProto(t: OnnxInitializer): Writer {
  if (!!t.data === !!t.external) {
    throw new Error(`onnx-proto: initializer '${t.name}' needs exactly one of data and external`);
  }
  const elements = t.dims.reduce((a, b) => a * b, 1);
  const expected = elements * (BYTES_PER_ELEMENT[t.dataType] ?? NaN);
  const w = new Writer();
  for (const d of t.dims) w.int(1, d);
  w.int(2, t.dataType);
  w.string(8, t.name);
  if (t.data) {
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    if (bytes.byteLength !== expected) {
      throw new Error(`onnx-proto: initializer '${t.name}' has ${bytes.byteLength} bytes, dims need ${expected}`);
    }
    w.bytes(9, bytes);
  } else {
    const ext = t.external!;
    if (ext.length !== expected) {
      throw new Error(`onnx-proto: initializer '${t.name}' points at ${ext.length} bytes, dims need ${expected}`);
    }
    w.message(13, stringEntry('location', ext.location));
    w.message(13, stringEntry('offset', String(ext.offset)));
    w.message(13, stringEntry('length', String(ext.length)));
    w.int(14, 1); // DataLocation.EXTERNAL
  }
  return w;
}

// AttributeProto.AttributeType
const ATTR_TYPE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7 } as const;

function attributeProto(name: string, a: OnnxAttribute): Writer {
  const w = new Writer();
  w.string(1, name);
  w.int(20, ATTR_TYPE[a.type]);
  switch (a.type) {
    case 'float':
      w.float(2, a.value);
      break;
    case 'int':
      w.int(3, a.value);
      break;
    case 'string':
      w.string(4, a.value);
      break;
    case 'tensor':
      w.message(5, tensorProto(a.value));
      break;
    case 'floats':
      for (const v of a.value) w.float(7, v);
      break;
    case 'ints':
      for (const v of a.value) w.int(8, v);
      break;
  }
  return w;
}

function nodeProto(n: OnnxNode): Writer {
  const w = new Writer();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name) w.string(3, n.name);
  w.string(4, n.opType);
  for (const [k, v] of Object.entries(n.attributes ?? {})) w.message(5, attributeProto(k, v));
  if (n.domain) w.string(7, n.domain);
  return w;
}

function valueInfoProto(v: OnnxValueInfo): Writer {
  // TypeProto.Tensor { elem_type = 1; shape = 2 }; TensorShapeProto { dim = 1 };
  // Dimension { dim_value = 1 | dim_param = 2 }.
  const tensorType = new Writer();
  tensorType.int(1, v.elemType ?? OnnxDataType.FLOAT);
  if (v.shape) {
    const shape = new Writer();
    for (const d of v.shape) {
      const dim = new Writer();
      if (typeof d === 'number') dim.int(1, d);
      else dim.string(2, d);
      shape.message(1, dim);
    }
    tensorType.message(2, shape);
  }
  const type = new Writer();
  type.message(1, tensorType);
  const w = new Writer();
  w.string(1, v.name);
  w.message(2, type);
  return w;
}

function graphProto(g: OnnxGraph): Writer {
  const w = new Writer();
  for (const n of g.nodes) w.message(1, nodeProto(n));
  w.string(2, g.name ?? 'graph');
  for (const t of g.initializers ?? []) w.message(5, tensorProto(t));
  for (const v of g.inputs) w.message(11, valueInfoProto(v));
  for (const v of g.outputs) w.message(12, valueInfoProto(v));
  for (const v of g.valueInfo ?? []) w.message(13, valueInfoProto(v));
  return w;
}

function defaultOpsets(g: OnnxGraph): Record<string, number> {
  const opsets: Record<string, number> = { '': DEFAULT_OPSET };
  for (const n of g.nodes) if (n.domain && !(n.domain in opsets)) opsets[n.domain] = 1;
  return opsets;
}

/** Serialise a model to ONNX protobuf bytes. */
export function encodeModel(model: OnnxModel): Uint8Array {
  const w = new Writer();
  w.int(1, model.irVersion ?? DEFAULT_IR_VERSION);
  w.string(2, model.producerName ?? 'likeness');
  if (model.producerVersion) w.string(3, model.producerVersion);
  if (model.docString) w.string(6, model.docString);
  w.message(7, graphProto(model.graph));
  for (const [domain, version] of Object.entries(model.opsets ?? defaultOpsets(model.graph))) {
    const op = new Writer(); // OperatorSetIdProto { domain = 1; version = 2 }
    if (domain) op.string(1, domain);
    op.int(2, version);
    w.message(8, op);
  }
  for (const [k, v] of Object.entries(model.metadata ?? {})) w.message(14, stringEntry(k, v));
  return w.finish();
}

/** Initializer from float32 values stored in the model. */
export function floatInitializer(name: string, dims: readonly number[], values: ArrayLike<number>): OnnxInitializer {
  return { name, dims, dataType: OnnxDataType.FLOAT, data: Float32Array.from(values) };
}

/** Initializer from int64 values (shapes for Reshape, axes, …). */
export function int64Initializer(name: string, dims: readonly number[], values: readonly number[]): OnnxInitializer {
  return { name, dims, dataType: OnnxDataType.INT64, data: BigInt64Array.from(values, (v) => BigInt(v)) };
}
