// The writer is checked by the consumer that matters: onnxruntime-web (wasm EP) loads the
// models and its outputs match plain CPU loops. A few byte-level checks pin the wire format
// of the cases ORT would forgive or that are easy to get subtly wrong.
import { describe, expect, it } from 'vitest';
import { roundToF16, toF16Array } from '../engine/dtype.ts';
import { assertClose } from '../../test/close.ts';
import { rng } from '../../test/random.ts';
import {
  attrFloat,
  attrFloats,
  attrInt,
  attrInts,
  attrString,
  attrTensor,
  encodeModel,
  floatInitializer,
  int64Initializer,
  OnnxDataType,
  type OnnxModel,
} from './onnx-proto.ts';
import { OrtSession } from './ort.ts';

// ---------------------------------------------------------------- CPU references (float64)

// a: (M, K), b: (K, N) → (M, N)
function matmulRef(a: ArrayLike<number>, b: ArrayLike<number>, M: number, K: number, N: number): Float64Array {
  const y = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[i * K + k] * b[k * N + j];
      y[i * N + j] = s;
    }
  return y;
}

// x: (B, C, H, W), w: (O, C, kh, kw), bias: (O) → (B, O, Ho, Wo)
function convRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  bias: ArrayLike<number>,
  [B, C, H, W]: number[],
  [O, kh, kw]: number[],
  stride: number,
  pad: number,
): { y: Float64Array; Ho: number; Wo: number } {
  const Ho = Math.floor((H + 2 * pad - kh) / stride) + 1;
  const Wo = Math.floor((W + 2 * pad - kw) / stride) + 1;
  const y = new Float64Array(B * O * Ho * Wo);
  for (let b = 0; b < B; b++)
    for (let o = 0; o < O; o++)
      for (let oy = 0; oy < Ho; oy++)
        for (let ox = 0; ox < Wo; ox++) {
          let s = bias[o];
          for (let c = 0; c < C; c++)
            for (let ky = 0; ky < kh; ky++)
              for (let kx = 0; kx < kw; kx++) {
                const iy = oy * stride - pad + ky;
                const ix = ox * stride - pad + kx;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                s += x[((b * C + c) * H + iy) * W + ix] * w[((o * C + c) * kh + ky) * kw + kx];
              }
          y[((b * O + o) * Ho + oy) * Wo + ox] = s;
        }
  return { y, Ho, Wo };
}

async function runWasm(
  model: OnnxModel,
  feeds: Record<string, { data: Float32Array; dims: number[] }>,
  externalData?: { path: string; data: Uint8Array }[],
) {
  const session = await OrtSession.create(encodeModel(model), { backend: 'wasm', externalData });
  try {
    expect(session.backend).toBe('wasm');
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

// ---------------------------------------------------------------- tests

describe('onnx-proto', () => {
  it('writes the ModelProto header fields with the numbers onnx.proto gives them', () => {
    const bytes = encodeModel({
      irVersion: 10,
      graph: { nodes: [], inputs: [], outputs: [] },
      opsets: { '': 21 },
    });
    // ir_version = 1 (varint 10), producer_name = 2 ("likeness").
    expect([...bytes.subarray(0, 4)]).toEqual([0x08, 10, 0x12, 8]);
    expect(new TextDecoder().decode(bytes.subarray(4, 12))).toBe('likeness');
    // opset_import = 8 { version = 2: 21 } at the end.
    expect([...bytes.subarray(bytes.length - 4)]).toEqual([0x42, 2, 0x10, 21]);
  });

  it('encodes negative int64 attributes as ten-byte two\u2019s complement', () => {
    const bytes = encodeModel({
      graph: {
        nodes: [{ opType: 'Softmax', inputs: ['x'], outputs: ['y'], attributes: { axis: attrInt(-1) } }],
        inputs: [],
        outputs: [],
      },
      opsets: { '': 21 },
    });
    // AttributeProto.i = 3, wire type 0: 0x18, then 0xff×9, 0x01.
    const needle = [0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    const at = bytes.findIndex((_, i) => needle.every((b, j) => bytes[i + j] === b));
    expect(at).toBeGreaterThan(0);
  });

  it('rejects initializers whose byte size does not match their dims', () => {
    const bad: OnnxModel = {
      graph: { nodes: [], inputs: [], outputs: [], initializers: [floatInitializer('w', [2, 3], [1, 2, 3])] },
    };
    expect(() => encodeModel(bad)).toThrow(/has 12 bytes, dims need 24/);
  });

  it('MatMul with a symbolic batch dim and an initializer runs in ORT (wasm) and matches a CPU matmul', async () => {
    const r = rng(1);
    const [M, K, N] = [5, 7, 3];
    const a = r.normals(M * K);
    const b = r.normals(K * N);
    const out = await runWasm(
      {
        graph: {
          nodes: [{ opType: 'MatMul', inputs: ['a', 'b'], outputs: ['y'] }],
          inputs: [{ name: 'a', shape: ['m', K] }],
          outputs: [{ name: 'y', shape: ['m', N] }],
          initializers: [floatInitializer('b', [K, N], b)],
        },
      },
      { a: { data: a, dims: [M, K] } },
    );
    expect(out.y.dims).toEqual([M, N]);
    assertClose(out.y.data, matmulRef(a, b, M, K, N), { rtol: 1e-5, atol: 1e-6 }, 'y');
  });

  it('Add with broadcasting, Reshape (int64 initializer) and Softmax(axis=-1) match the CPU', async () => {
    const r = rng(2);
    const x = r.normals(2 * 3 * 4);
    const bias = r.normals(4);
    const out = await runWasm(
      {
        graph: {
          nodes: [
            { opType: 'Add', inputs: ['x', 'bias'], outputs: ['s'] },
            { opType: 'Reshape', inputs: ['s', 'shape'], outputs: ['r'] },
            { opType: 'Softmax', inputs: ['r'], outputs: ['y'], attributes: { axis: attrInt(-1) } },
          ],
          inputs: [{ name: 'x', shape: [2, 3, 4] }],
          outputs: [{ name: 'y', shape: [6, 4] }],
          initializers: [floatInitializer('bias', [4], bias), int64Initializer('shape', [2], [6, -1])],
        },
      },
      { x: { data: x, dims: [2, 3, 4] } },
    );
    expect(out.y.dims).toEqual([6, 4]);
    const ref = new Float64Array(24);
    for (let row = 0; row < 6; row++) {
      const v = [0, 1, 2, 3].map((j) => x[row * 4 + j] + bias[j]);
      const m = Math.max(...v);
      const e = v.map((t) => Math.exp(t - m));
      const z = e.reduce((p, q) => p + q, 0);
      e.forEach((t, j) => (ref[row * 4 + j] = t / z));
    }
    assertClose(out.y.data, ref, { rtol: 1e-5, atol: 1e-7 }, 'y');
  });

  it('Conv (ints/int/string attributes, stride 2, odd sizes) with weights in external data matches the CPU', async () => {
    const r = rng(3);
    const [B, C, H, W, O] = [2, 3, 7, 9, 5];
    const x = r.normals(B * C * H * W);
    const w = r.normals(O * C * 9, 0.3);
    const bias = r.normals(O);
    // A safetensors-shaped file: u64 header length, JSON header, then the tensor bytes at a
    // deliberately unaligned offset, as packs may produce.
    const header = new TextEncoder().encode(
      JSON.stringify({ 'conv.weight': { dtype: 'F32', shape: [O, C, 3, 3], data_offsets: [3, 3 + w.byteLength] } }),
    );
    const file = new Uint8Array(8 + header.length + 3 + w.byteLength);
    new DataView(file.buffer).setBigUint64(0, BigInt(header.length), true);
    file.set(header, 8);
    const offset = 8 + header.length + 3;
    file.set(new Uint8Array(w.buffer), offset);
    const out = await runWasm(
      {
        graph: {
          nodes: [
            {
              opType: 'Conv',
              inputs: ['x', 'conv.weight', 'conv.bias'],
              outputs: ['y'],
              attributes: {
                kernel_shape: attrInts([3, 3]),
                pads: attrInts([1, 1, 1, 1]),
                strides: attrInts([2, 2]),
                group: attrInt(1),
                auto_pad: attrString('NOTSET'),
              },
            },
          ],
          inputs: [{ name: 'x', shape: [B, C, H, W] }],
          outputs: [{ name: 'y' }],
          initializers: [
            {
              name: 'conv.weight',
              dims: [O, C, 3, 3],
              dataType: OnnxDataType.FLOAT,
              external: { location: 'unet.safetensors', offset, length: w.byteLength },
            },
            floatInitializer('conv.bias', [O], bias),
          ],
        },
      },
      { x: { data: x, dims: [B, C, H, W] } },
      [{ path: 'unet.safetensors', data: file }],
    );
    const ref = convRef(x, w, bias, [B, C, H, W], [O, 3, 3], 2, 1);
    expect(out.y.dims).toEqual([B, O, ref.Ho, ref.Wo]);
    assertClose(out.y.data, ref.y, { rtol: 1e-5, atol: 1e-6 }, 'y');
  });

  it('a com.microsoft op (FusedMatMul: float alpha, int transB) gets its opset import and matches the CPU', async () => {
    const r = rng(4);
    const [M, K, N] = [4, 6, 5];
    const a = r.normals(M * K);
    const bT = r.normals(N * K); // stored (N, K), used transposed
    const b = new Float32Array(K * N);
    for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) b[k * N + n] = bT[n * K + k];
    const out = await runWasm(
      {
        graph: {
          nodes: [
            {
              opType: 'FusedMatMul',
              domain: 'com.microsoft',
              inputs: ['a', 'bT'],
              outputs: ['y'],
              attributes: { alpha: attrFloat(0.5), transB: attrInt(1) },
            },
          ],
          inputs: [
            { name: 'a', shape: [M, K] },
            { name: 'bT', shape: [N, K] },
          ],
          outputs: [{ name: 'y', shape: [M, N] }],
        },
      },
      { a: { data: a, dims: [M, K] }, bT: { data: bT, dims: [N, K] } },
    );
    assertClose(
      out.y.data,
      matmulRef(a, b, M, K, N).map((v) => 0.5 * v),
      { rtol: 1e-5, atol: 1e-6 },
      'y',
    );
  });

  it('Constant nodes (floats and tensor attributes) feed Add and Mul', async () => {
    const x = rng(5).normals(6);
    const shift = [0.5, -1, 2, 0.25, -0.75, 3];
    const out = await runWasm(
      {
        graph: {
          nodes: [
            { opType: 'Constant', inputs: [], outputs: ['shift'], attributes: { value_floats: attrFloats(shift) } },
            {
              opType: 'Constant',
              inputs: [],
              outputs: ['gain'],
              attributes: { value: attrTensor(floatInitializer('gain', [2, 1], [3, -2])) },
            },
            { opType: 'Reshape', inputs: ['x', 'shape'], outputs: ['x2'] },
            { opType: 'Reshape', inputs: ['shift', 'shape'], outputs: ['shift2'] },
            { opType: 'Add', inputs: ['x2', 'shift2'], outputs: ['s'] },
            { opType: 'Mul', inputs: ['s', 'gain'], outputs: ['y'] },
          ],
          inputs: [{ name: 'x', shape: [6] }],
          outputs: [{ name: 'y', shape: [2, 3] }],
          initializers: [int64Initializer('shape', [2], [2, 3])],
        },
      },
      { x: { data: x, dims: [6] } },
    );
    const ref = Array.from(x, (v, i) => (v + shift[i]) * (i < 3 ? 3 : -2));
    assertClose(out.y.data, ref, { rtol: 1e-6, atol: 1e-6 }, 'y');
  });

  it('fp16 initializers in external data + Cast, as packs store weights', async () => {
    const r = rng(6);
    const [M, K, N] = [3, 8, 4];
    const a = r.normals(M * K);
    const w = r.normals(K * N);
    const half = toF16Array(w);
    const file = new Uint8Array(16 + half.byteLength);
    file.set(new Uint8Array(half.buffer), 16);
    const out = await runWasm(
      {
        graph: {
          nodes: [
            { opType: 'Cast', inputs: ['w16'], outputs: ['w'], attributes: { to: attrInt(OnnxDataType.FLOAT) } },
            { opType: 'MatMul', inputs: ['a', 'w'], outputs: ['y'] },
          ],
          inputs: [{ name: 'a', shape: [M, K] }],
          outputs: [{ name: 'y', shape: [M, N] }],
          initializers: [
            {
              name: 'w16',
              dims: [K, N],
              dataType: OnnxDataType.FLOAT16,
              external: { location: 'w.bin', offset: 16, length: half.byteLength },
            },
          ],
        },
      },
      { a: { data: a, dims: [M, K] } },
      [{ path: 'w.bin', data: file }],
    );
    // The fp16-rounded weights are exact in fp32; only the matmul's rounding remains.
    assertClose(out.y.data, matmulRef(a, roundToF16(w), M, K, N), { rtol: 1e-5, atol: 1e-6 }, 'y');
  });
});
