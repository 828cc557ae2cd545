// Checks an ONNX graph's external-data references before onnxruntime sees them: every
// initializer stored outside the model must name one of the graph's weights files and a
// byte range inside it, matching its dims. onnxruntime reports a bad range with its internal
// source path and an offset; this says which graph, tensor and file, in the pack's words.
//
// A minimal protobuf walk over ModelProto.graph (7) → GraphProto.initializer (5) →
// TensorProto { dims 1, data_type 2, name 8, external_data 13 (key 1, value 2), data_location 14 }.
import { PackFileError } from '../packs/pack-file-error.ts';
import { PackError } from '../domain/errors.ts';
import { BYTES_PER_ELEMENT } from './onnx-proto.ts';

interface Field {
  no: number;
  wire: number;
  /** Varint value (wire 0). */
  value: number;
  /** Payload (wire 2). */
  bytes: Uint8Array;
}

class ProtoError extends PackError {}

function* fields(b: Uint8Array): Generator<Field> {
  let p = 0;
  const varint = (): number => {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (p >= b.length) throw new ProtoError('ends inside a number');
      const byte = b[p++];
      v += (byte & 0x7f) * scale;
      if (byte < 0x80) return v;
      scale *= 128;
    }
    throw new ProtoError('a number longer than 10 bytes');
  };
  while (p < b.length) {
    const key = varint();
    const no = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === 0) yield { no, wire, value: varint(), bytes: b.subarray(0, 0) };
    else if (wire === 2) {
      const n = varint();
      if (n > b.length - p) throw new ProtoError('a field runs past the end');
      yield { no, wire, value: n, bytes: b.subarray(p, p + n) };
      p += n;
    } else if (wire === 1) p += 8;
    else if (wire === 5) p += 4;
    else throw new ProtoError(`unsupported wire type ${wire}`);
    if (p > b.length) throw new ProtoError('a field runs past the end');
  }
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

/**
 * Throws PackFileError (naming `graphPath`) when an external initializer of `model` points
 * at a file not in `files` (path → byte size) or at a range outside it.
 */
export function checkOnnxExternalData(graphPath: string, model: Uint8Array, files: ReadonlyMap<string, number>): void {
  const fail = (what: string): never => {
    throw new PackFileError(graphPath, `${what}. The pack's ONNX graph does not match its weights; rebuild the pack.`);
  };
  try {
    for (const g of fields(model)) {
      if (g.no !== 7 || g.wire !== 2) continue;
      for (const init of fields(g.bytes)) {
        if (init.no !== 5 || init.wire !== 2) continue;
        let name = '?';
        let dataType = 0;
        let external = false;
        const dims: number[] = [];
        const entries = new Map<string, string>();
        for (const f of fields(init.bytes)) {
          if (f.no === 1 && f.wire === 0) dims.push(f.value);
          else if (f.no === 1 && f.wire === 2) for (const d of packedVarints(f.bytes)) dims.push(d);
          else if (f.no === 2 && f.wire === 0) dataType = f.value;
          else if (f.no === 8 && f.wire === 2) name = text(f.bytes);
          else if (f.no === 14 && f.wire === 0) external = f.value === 1;
          else if (f.no === 13 && f.wire === 2) {
            let k = '';
            let v = '';
            for (const e of fields(f.bytes)) {
              if (e.no === 1 && e.wire === 2) k = text(e.bytes);
              else if (e.no === 2 && e.wire === 2) v = text(e.bytes);
            }
            entries.set(k, v);
          }
        }
        if (!external) continue;
        const at = `initializer '${name.slice(0, 200)}'`;
        const location = entries.get('location');
        if (location === undefined) fail(`${at} is stored externally but names no file`);
        const size = files.get(location!);
        if (size === undefined)
          fail(
            `${at} points into ${JSON.stringify(location!.slice(0, 200))}, which is not one of the graph's weights files`,
          );
        const offset = Number(entries.get('offset') ?? '0');
        const elementBytes = BYTES_PER_ELEMENT[dataType];
        const need = elementBytes === undefined ? NaN : dims.reduce((a, d) => a * d, elementBytes);
        const length = entries.has('length') ? Number(entries.get('length')) : need;
        if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
          fail(
            `${at} has the byte range offset ${entries.get('offset')}, length ${entries.get('length')}, which are not byte counts`,
          );
        }
        if (offset + length > size!) {
          fail(`${at} points at bytes [${offset}, ${offset + length}) of ${location}, which has ${size} bytes`);
        }
        if (Number.isFinite(need) && length !== need) {
          fail(`${at} points at ${length} bytes of ${location}, but its shape [${dims.join(', ')}] needs ${need}`);
        }
      }
    }
  } catch (e) {
    if (e instanceof ProtoError) fail(`the graph file is damaged (${e.message})`);
    throw e;
  }
}

function* packedVarints(b: Uint8Array): Generator<number> {
  let p = 0;
  while (p < b.length) {
    let v = 0;
    let scale = 1;
    for (;;) {
      if (p >= b.length) throw new ProtoError('ends inside a number');
      const byte = b[p++];
      v += (byte & 0x7f) * scale;
      if (byte < 0x80) break;
      scale *= 128;
    }
    yield v;
  }
}
