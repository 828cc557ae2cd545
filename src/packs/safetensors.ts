// safetensors reader and writer (https://github.com/huggingface/safetensors, format section
// of its README). Layout: 8-byte little-endian u64 N, N bytes of UTF-8 JSON header, then the
// data region. The header maps tensor names to {dtype, shape, data_offsets: [begin, end]}
// (offsets relative to the data region) plus an optional "__metadata__" string→string map.
//
// The reader treats every file as hostile (concept files come from strangers): each number
// is checked before use, and it enforces what the reference implementation enforces —
// tensors sorted by offset must tile the data region exactly (no overlap, no hole, the last
// one ending at end of file: "the byte buffer needs to be entirely indexed"), and duplicate
// keys are refused. Every failure is a SafetensorsError naming the tensor where there is one.
//
// The writer produces the bytes the reference writer (Python `safetensors.torch.save_file`)
// produces: tensors ordered by dtype alignment (largest first) then name, header in that
// order with "__metadata__" first, compact JSON, padded with spaces to a multiple of 8 so
// every tensor's data starts 8-aligned in the file.
import { f16BitsToF32, f32ToF16Bits } from '../engine/dtype.ts';
import { JsonSyntaxError, parseStrictJson, type JsonObjectMap, type JsonValue } from './strict-json.ts';
import { PackError } from '../domain/errors.ts';

/** Element types the format defines (sub-byte and complex types of newer versions excluded). */
export type SafetensorsDType =
  | 'BOOL'
  | 'U8'
  | 'I8'
  | 'F8_E5M2'
  | 'F8_E4M3'
  | 'I16'
  | 'U16'
  | 'F16'
  | 'BF16'
  | 'I32'
  | 'U32'
  | 'F32'
  | 'F64'
  | 'I64'
  | 'U64';

// In the reference implementation's enum order, which is increasing alignment: the writer
// sorts by it (descending).
const DTYPE_ORDER: readonly SafetensorsDType[] = [
  'BOOL',
  'U8',
  'I8',
  'F8_E5M2',
  'F8_E4M3',
  'I16',
  'U16',
  'F16',
  'BF16',
  'I32',
  'U32',
  'F32',
  'F64',
  'I64',
  'U64',
];
const DTYPE_SIZE: Record<SafetensorsDType, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

export const dtypeSize = (dtype: SafetensorsDType): number => DTYPE_SIZE[dtype];
export const isSafetensorsDType = (s: string): s is SafetensorsDType => Object.hasOwn(DTYPE_SIZE, s);

/** The reference implementation's limit on the JSON header; callers may only lower it. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export type SafetensorsErrorCode =
  | 'too-short' // fewer than 8 bytes
  | 'need-more-bytes' // header-only parse given a prefix that ends inside the header
  | 'header-too-large' // length field over the cap
  | 'header-beyond-file' // length field points past the end of the file
  | 'header-encoding' // not UTF-8
  | 'header-json' // not JSON, duplicate key, or not an object
  | 'metadata' // __metadata__ not a string→string map
  | 'tensor-info' // entry not {dtype, shape, data_offsets}
  | 'dtype'
  | 'shape'
  | 'offsets'
  | 'size-mismatch' // end-begin ≠ numel·dtype size
  | 'out-of-bounds' // past the end of the data region
  | 'overlap'
  | 'hole' // bytes no tensor claims (the format requires full coverage)
  | 'invalid-input' // writer given bad tensors
  | 'not-found'
  | 'unsupported'; // float32 view of a non-float dtype

export class SafetensorsError extends PackError {
  constructor(
    readonly code: SafetensorsErrorCode,
    message: string,
    /** The tensor concerned, where there is one. */
    readonly tensor?: string,
    /** For 'need-more-bytes': how many leading bytes of the file the header parse needs. */
    readonly bytesNeeded?: number,
  ) {
    super(`safetensors: ${message}`);
    this.name = 'SafetensorsError';
  }
}

export interface SafetensorsTensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  /** [begin, end) relative to the data region, as in the header. */
  readonly dataOffsets: readonly [number, number];
  /** Absolute byte offset of the data in the file (dataOffset + begin): what ONNX external data points at. */
  readonly fileOffset: number;
  readonly byteLength: number;
  readonly numel: number;
}

export interface SafetensorsHeader {
  /** N, the JSON header length (including any padding). */
  readonly headerLength: number;
  /** 8 + N: where the data region starts in the file. */
  readonly dataOffset: number;
  /** Bytes of the data region (= end of the last tensor). */
  readonly dataLength: number;
  /** dataOffset + dataLength: the exact size the file must have. */
  readonly fileSize: number;
  /** "__metadata__" (empty object when absent); null-prototype, so any key is a plain key. */
  readonly metadata: Readonly<Record<string, string>>;
  readonly hasMetadata: boolean;
  /** In header order. */
  readonly tensors: readonly SafetensorsTensorInfo[];
  readonly byName: ReadonlyMap<string, SafetensorsTensorInfo>;
}

export interface SafetensorsFile extends SafetensorsHeader {
  readonly bytes: Uint8Array;
  names(): string[];
  info(name: string): SafetensorsTensorInfo;
  /** Zero-copy view of a tensor's raw little-endian bytes. */
  rawBytes(name: string): Uint8Array;
  /** A fresh Float32Array of the values (F32 copied, F16/BF16/F64 converted). */
  float32(name: string): Float32Array;
}

export interface ParseOptions {
  /** Cap on the header length N; default and maximum MAX_HEADER_BYTES. Lower it for untrusted concept files. */
  maxHeaderBytes?: number;
}

export interface HeaderParseOptions extends ParseOptions {
  /** Size of the whole file when known: enables the end-of-file coverage and bounds checks. */
  fileSize?: number;
}

function headerCap(options: ParseOptions): number {
  const cap = options.maxHeaderBytes ?? MAX_HEADER_BYTES;
  if (!Number.isInteger(cap) || cap < 2 || cap > MAX_HEADER_BYTES) {
    throw new RangeError(`maxHeaderBytes must be an integer in [2, ${MAX_HEADER_BYTES}], got ${cap}`);
  }
  return cap;
}

/**
 * From the first 8 bytes of a file: how many leading bytes (8 + N) hold the header.
 * Lets a streaming reader fetch exactly the header before anything else.
 */
export function safetensorsHeaderSize(first: Uint8Array, options: ParseOptions = {}): number {
  const cap = headerCap(options);
  if (first.length < 8) {
    throw new SafetensorsError(
      'too-short',
      `file has ${first.length} bytes, fewer than the 8-byte header length field`,
    );
  }
  const dv = new DataView(first.buffer, first.byteOffset, 8);
  const lo = dv.getUint32(0, true);
  const hi = dv.getUint32(4, true);
  if (hi !== 0 || lo > cap) {
    const n = hi * 2 ** 32 + lo;
    throw new SafetensorsError('header-too-large', `header length field says ${n} bytes, over the ${cap}-byte limit`);
  }
  return 8 + lo;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const isMap = (v: JsonValue | undefined): v is JsonObjectMap => v instanceof Map;

/**
 * Parses and validates the header from a prefix of the file (at least 8 + N bytes; more is
 * fine, and the whole file is fine). Without `fileSize`, the coverage check can only say
 * what size the file must have (`fileSize` in the result); with it, a mismatch is an error.
 */
export function parseSafetensorsHeader(prefix: Uint8Array, options: HeaderParseOptions = {}): SafetensorsHeader {
  const headerEnd = safetensorsHeaderSize(prefix, options);
  const { fileSize } = options;
  if (fileSize !== undefined && (!Number.isSafeInteger(fileSize) || fileSize < 0)) {
    throw new RangeError(`fileSize must be a non-negative integer, got ${fileSize}`);
  }
  const headerLength = headerEnd - 8;
  if (fileSize !== undefined && headerEnd > fileSize) {
    throw new SafetensorsError(
      'header-beyond-file',
      `header length field says ${headerLength} bytes but the file has only ${fileSize - 8} bytes after it`,
    );
  }
  if (prefix.length < headerEnd) {
    throw new SafetensorsError(
      'need-more-bytes',
      `need the first ${headerEnd} bytes of the file to read its header, got ${prefix.length}`,
      undefined,
      headerEnd,
    );
  }
  if (headerLength === 0 || prefix[8] !== 0x7b) {
    throw new SafetensorsError('header-json', `header must be a JSON object starting with '{'`);
  }
  let text: string;
  try {
    text = utf8.decode(prefix.subarray(8, headerEnd));
  } catch {
    throw new SafetensorsError('header-encoding', 'header is not valid UTF-8');
  }
  let root: JsonValue;
  try {
    // Depth 3 is all the format uses (root → entry → shape array); a little slack for the error message.
    root = parseStrictJson(text, { maxDepth: 4 });
  } catch (e) {
    if (e instanceof JsonSyntaxError)
      throw new SafetensorsError('header-json', `header is not valid JSON: ${e.message}`);
    throw e;
  }
  if (!isMap(root)) throw new SafetensorsError('header-json', 'header is not a JSON object');

  const metadata: Record<string, string> = Object.create(null);
  let hasMetadata = false;
  const parsed: {
    name: string;
    dtype: SafetensorsDType;
    shape: number[];
    begin: number;
    end: number;
    numel: number;
  }[] = [];
  for (const [name, entry] of root) {
    if (name === '__metadata__') {
      hasMetadata = true;
      if (!isMap(entry)) throw new SafetensorsError('metadata', '__metadata__ must be an object of strings');
      for (const [k, v] of entry) {
        if (typeof v !== 'string') {
          throw new SafetensorsError(
            'metadata',
            `__metadata__ value of ${JSON.stringify(k)} must be a string, got ${jsonKind(v)}`,
          );
        }
        metadata[k] = v;
      }
      continue;
    }
    const q = JSON.stringify(name);
    if (!isMap(entry))
      throw new SafetensorsError('tensor-info', `tensor ${q}: entry must be an object, got ${jsonKind(entry)}`, name);
    for (const k of entry.keys()) {
      if (k !== 'dtype' && k !== 'shape' && k !== 'data_offsets') {
        throw new SafetensorsError('tensor-info', `tensor ${q}: unknown field ${JSON.stringify(k)}`, name);
      }
    }
    const dtype = entry.get('dtype');
    if (typeof dtype !== 'string')
      throw new SafetensorsError('dtype', `tensor ${q}: dtype must be a string, got ${jsonKind(dtype)}`, name);
    if (!isSafetensorsDType(dtype))
      throw new SafetensorsError('dtype', `tensor ${q}: unknown dtype ${JSON.stringify(dtype)}`, name);
    const shape = entry.get('shape');
    if (!Array.isArray(shape) || !shape.every(isCount)) {
      throw new SafetensorsError(
        'shape',
        `tensor ${q}: shape must be an array of non-negative integers, got ${preview(shape)}`,
        name,
      );
    }
    const offsets = entry.get('data_offsets');
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
      throw new SafetensorsError(
        'offsets',
        `tensor ${q}: data_offsets must be [begin, end] non-negative integers, got ${preview(offsets)}`,
        name,
      );
    }
    const [begin, end] = offsets;
    if (end < begin)
      throw new SafetensorsError('offsets', `tensor ${q}: data_offsets [${begin}, ${end}] end before begin`, name);
    const numel = elementCount(shape);
    if (numel === null)
      throw new SafetensorsError('shape', `tensor ${q}: shape [${shape.join(', ')}] has too many elements`, name);
    const nbytes = numel * DTYPE_SIZE[dtype];
    if (end - begin !== nbytes) {
      throw new SafetensorsError(
        'size-mismatch',
        `tensor ${q}: data_offsets [${begin}, ${end}] span ${end - begin} bytes but ${dtype} [${shape.join(', ')}] needs ${nbytes}`,
        name,
      );
    }
    if (fileSize !== undefined && end > fileSize - headerEnd) {
      throw new SafetensorsError(
        'out-of-bounds',
        `tensor ${q}: data_offsets [${begin}, ${end}] end past the data region (${fileSize - headerEnd} bytes)`,
        name,
      );
    }
    parsed.push({ name, dtype, shape, begin, end, numel });
  }

  // Tiling check: sorted by (begin, end), each tensor starts where the previous one ended.
  const order = parsed
    .map((_, i) => i)
    .sort((a, b) => parsed[a].begin - parsed[b].begin || parsed[a].end - parsed[b].end);
  let covered = 0;
  let prev: string | null = null;
  for (const i of order) {
    const t = parsed[i];
    if (t.begin < covered) {
      throw new SafetensorsError(
        'overlap',
        `tensor ${JSON.stringify(t.name)} [${t.begin}, ${t.end}] overlaps tensor ${JSON.stringify(prev)} (which ends at ${covered})`,
        t.name,
      );
    }
    if (t.begin > covered) {
      throw new SafetensorsError(
        'hole',
        `bytes [${covered}, ${t.begin}) of the data region before tensor ${JSON.stringify(t.name)} belong to no tensor`,
        t.name,
      );
    }
    covered = t.end;
    prev = t.name;
  }
  if (fileSize !== undefined && headerEnd + covered !== fileSize) {
    throw new SafetensorsError(
      'hole',
      `the data region has ${fileSize - headerEnd} bytes but the tensors cover only ${covered}` +
        (prev === null ? '' : ` (the last one, ${JSON.stringify(prev)}, ends at ${covered})`),
    );
  }

  const tensors: SafetensorsTensorInfo[] = parsed.map((t) => ({
    name: t.name,
    dtype: t.dtype,
    shape: t.shape,
    dataOffsets: [t.begin, t.end] as const,
    fileOffset: headerEnd + t.begin,
    byteLength: t.end - t.begin,
    numel: t.numel,
  }));
  return {
    headerLength,
    dataOffset: headerEnd,
    dataLength: covered,
    fileSize: headerEnd + covered,
    metadata,
    hasMetadata,
    tensors,
    byName: new Map(tensors.map((t) => [t.name, t])),
  };
}

/** Parses and validates a whole file held in memory. */
export function parseSafetensors(bytes: Uint8Array, options: ParseOptions = {}): SafetensorsFile {
  const header = parseSafetensorsHeader(bytes, { ...options, fileSize: bytes.length });
  const info = (name: string): SafetensorsTensorInfo => {
    const t = header.byName.get(name);
    if (!t) throw new SafetensorsError('not-found', `no tensor ${JSON.stringify(name)}`, name);
    return t;
  };
  const rawBytes = (name: string): Uint8Array => {
    const t = info(name);
    return bytes.subarray(t.fileOffset, t.fileOffset + t.byteLength);
  };
  return {
    ...header,
    bytes,
    names: () => header.tensors.map((t) => t.name),
    info,
    rawBytes,
    float32: (name) => decodeFloat32(info(name).dtype, rawBytes(name), name),
  };
}

/** Decodes little-endian F32/F16/BF16/F64 bytes into a fresh Float32Array (alignment-agnostic). */
export function decodeFloat32(dtype: SafetensorsDType, raw: Uint8Array, name = ''): Float32Array {
  const n = raw.length / DTYPE_SIZE[dtype];
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out = new Float32Array(n);
  switch (dtype) {
    case 'F32':
      if (raw.byteOffset % 4 === 0 && LITTLE_ENDIAN) out.set(new Float32Array(raw.buffer, raw.byteOffset, n));
      else for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
      return out;
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = f16BitsToF32(dv.getUint16(2 * i, true));
      return out;
    case 'BF16': {
      // bfloat16 is the top half of a float32.
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u[i] = dv.getUint16(2 * i, true) << 16;
      return out;
    }
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true);
      return out;
    default:
      throw new SafetensorsError(
        'unsupported',
        `tensor ${JSON.stringify(name)}: ${dtype} is not a float type; use rawBytes()`,
        name,
      );
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Round-to-nearest-even float32 → bfloat16 bits (NaN stays NaN). */
const bf16Scratch = new Float32Array(1);
const bf16ScratchBits = new Uint32Array(bf16Scratch.buffer);

export function f32ToBf16Bits(value: number): number {
  bf16Scratch[0] = value;
  const x = bf16ScratchBits[0];
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

export interface SafetensorsTensorInput {
  name: string;
  dtype: SafetensorsDType;
  shape: readonly number[];
  /**
   * F32: Float32Array. F16/BF16: Float32Array (rounded to nearest even) or Uint16Array of raw bits.
   * Any dtype: Uint8Array of raw little-endian bytes.
   */
  data: Float32Array | Uint16Array | Uint8Array;
}

/** Serializes tensors the way the reference (Python/Rust) writer does; see the file comment. */
export function writeSafetensors(
  tensors: readonly SafetensorsTensorInput[],
  metadata?: Readonly<Record<string, string>>,
): Uint8Array {
  const encoded = new Map<string, Uint8Array>();
  const layout = planSafetensorsLayout(
    tensors.map((t) => {
      const entry = checkEntry(t, encoded);
      const bytes = encode(t, entry.numel);
      encoded.set(t.name, bytes);
      return { name: t.name, dtype: t.dtype, shape: t.shape, byteLength: bytes.length };
    }),
    metadata,
  );
  const out = new Uint8Array(layout.fileSize);
  out.set(layout.header, 0);
  for (const t of layout.tensors) out.set(encoded.get(t.name)!, layout.header.length + t.begin);
  return out;
}

function checkEntry(
  t: { name: string; dtype: SafetensorsDType; shape: readonly number[] },
  seen: { has(name: string): boolean },
): { numel: number } {
  const q = JSON.stringify(t.name);
  if (typeof t.name !== 'string') throw new SafetensorsError('invalid-input', 'tensor name must be a string');
  if (t.name === '__metadata__')
    throw new SafetensorsError('invalid-input', 'a tensor cannot be named "__metadata__"', t.name);
  if (seen.has(t.name)) throw new SafetensorsError('invalid-input', `duplicate tensor name ${q}`, t.name);
  if (!isSafetensorsDType(t.dtype))
    throw new SafetensorsError('invalid-input', `tensor ${q}: unknown dtype ${JSON.stringify(t.dtype)}`, t.name);
  if (!t.shape.every(isCount))
    throw new SafetensorsError('invalid-input', `tensor ${q}: shape must be non-negative integers`, t.name);
  const numel = elementCount(t.shape);
  if (numel === null) throw new SafetensorsError('invalid-input', `tensor ${q}: too many elements`, t.name);
  return { numel };
}

export interface SafetensorsLayoutEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: readonly number[];
  byteLength: number;
}

export interface SafetensorsLayout {
  /** The first 8 + N bytes of the file: length field and padded JSON header. */
  header: Uint8Array;
  /** The tensors in file order, with their [begin, end) in the data region. */
  tensors: { name: string; dtype: SafetensorsDType; shape: readonly number[]; begin: number; end: number }[];
  fileSize: number;
}

/**
 * The header and tensor order the reference writer would produce for these tensors, without
 * their data: lets a streaming writer emit the header first and then each tensor's bytes in
 * order, with the same result as writeSafetensors.
 */
export function planSafetensorsLayout(
  entries: readonly SafetensorsLayoutEntry[],
  metadata?: Readonly<Record<string, string>>,
): SafetensorsLayout {
  const seen = new Set<string>();
  const prepared = entries.map((t) => {
    const { numel } = checkEntry(t, seen);
    seen.add(t.name);
    const want = numel * DTYPE_SIZE[t.dtype];
    if (t.byteLength !== want) {
      throw new SafetensorsError(
        'invalid-input',
        `tensor ${JSON.stringify(t.name)}: shape [${t.shape.join(', ')}] needs ${numel} elements (${want} bytes), got ${t.byteLength} bytes`,
        t.name,
      );
    }
    return { name: t.name, dtype: t.dtype, shape: [...t.shape], byteLength: t.byteLength };
  });
  prepared.sort(
    (a, b) => DTYPE_ORDER.indexOf(b.dtype) - DTYPE_ORDER.indexOf(a.dtype) || compareCodePoints(a.name, b.name),
  );

  const parts: string[] = [];
  if (metadata !== undefined) {
    const keys = Object.keys(metadata).sort(compareCodePoints);
    for (const k of keys) {
      if (typeof metadata[k] !== 'string')
        throw new SafetensorsError('invalid-input', `metadata value of ${JSON.stringify(k)} must be a string`);
    }
    parts.push(`"__metadata__":{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',')}}`);
  }
  let offset = 0;
  const tensors: SafetensorsLayout['tensors'] = [];
  for (const t of prepared) {
    const end = offset + t.byteLength;
    parts.push(
      `${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`,
    );
    tensors.push({ name: t.name, dtype: t.dtype, shape: t.shape, begin: offset, end });
    offset = end;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const n = Math.ceil(json.length / 8) * 8;
  if (n > MAX_HEADER_BYTES)
    throw new SafetensorsError('invalid-input', `header would be ${n} bytes, over the ${MAX_HEADER_BYTES}-byte limit`);
  const header = new Uint8Array(8 + n);
  const dv = new DataView(header.buffer);
  dv.setUint32(0, n, true);
  dv.setUint32(4, 0, true);
  header.set(json, 8);
  header.fill(0x20, 8 + json.length, 8 + n);
  return { header, tensors, fileSize: 8 + n + offset };
}

function encode(t: SafetensorsTensorInput, numel: number): Uint8Array {
  const q = JSON.stringify(t.name);
  const size = DTYPE_SIZE[t.dtype];
  const { data } = t;
  const wrongLength = (got: number, unit: string) =>
    new SafetensorsError(
      'invalid-input',
      `tensor ${q}: shape [${t.shape.join(', ')}] needs ${numel} elements (${numel * size} bytes), got ${got} ${unit}`,
      t.name,
    );
  if (data instanceof Uint8Array) {
    if (data.length !== numel * size) throw wrongLength(data.length, 'bytes');
    return data;
  }
  if (data.length !== numel) throw wrongLength(data.length, 'elements');
  const out = new Uint8Array(numel * size);
  const dv = new DataView(out.buffer);
  if (t.dtype === 'F32' && data instanceof Float32Array) {
    for (let i = 0; i < numel; i++) dv.setFloat32(4 * i, data[i], true);
  } else if ((t.dtype === 'F16' || t.dtype === 'BF16') && data instanceof Uint16Array) {
    for (let i = 0; i < numel; i++) dv.setUint16(2 * i, data[i], true);
  } else if (t.dtype === 'F16' && data instanceof Float32Array) {
    for (let i = 0; i < numel; i++) dv.setUint16(2 * i, f32ToF16Bits(data[i]), true);
  } else if (t.dtype === 'BF16' && data instanceof Float32Array) {
    for (let i = 0; i < numel; i++) dv.setUint16(2 * i, f32ToBf16Bits(data[i]), true);
  } else {
    throw new SafetensorsError(
      'invalid-input',
      `tensor ${q}: ${data.constructor.name} data cannot be written as ${t.dtype} (pass raw bytes as a Uint8Array)`,
      t.name,
    );
  }
  return out;
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Product of the dims, or null past 2^53 (a zero dim anywhere makes it 0). */
function elementCount(shape: readonly number[]): number | null {
  if (shape.includes(0)) return 0;
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER) return null;
  }
  return n;
}

/** Orders by Unicode code point, which is the UTF-8 byte order Rust's String sort uses. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n;) {
    const ca = a.codePointAt(i)!;
    const cb = b.codePointAt(i)!;
    if (ca !== cb) return ca - cb;
    i += ca > 0xffff ? 2 : 1;
  }
  return a.length - b.length;
}

function jsonKind(v: JsonValue | undefined): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Map) return 'an object';
  return `a ${typeof v}`;
}

function preview(v: JsonValue | undefined): string {
  if (v === undefined) return 'nothing';
  if (v instanceof Map) return 'an object';
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
