// The tracer op by op: each TensorOps method is traced into a small graph, run by
// onnxruntime-web (wasm EP) and compared with the float64 CPU references the engine's
// kernels are tested against (src/kernels/*/…-reference.ts) — independent of ORT and of
// the tracer. Plus the parameter plumbing: external data into safetensors, fp16 + Cast,
// shape refusal.
import { describe, expect, it } from 'vitest';
import { assertClose } from '../../test/close.ts';
import { rng } from '../../test/random.ts';
import { roundToF16 } from '../engine/dtype.ts';
import { attentionForwardRef } from '../kernels/attention/attention-reference.ts';
import { binaryForwardRef } from '../kernels/binary/binary-reference.ts';
import { concatForwardRef, sliceForwardRef } from '../kernels/concat/concat-reference.ts';
import { conv2dForwardRef } from '../kernels/conv2d/conv2d-reference.ts';
import { embeddingForwardRef } from '../kernels/embedding/embedding-reference.ts';
import { gegluForwardRef } from '../kernels/geglu/geglu-reference.ts';
import { geluForwardRef } from '../kernels/gelu/gelu-reference.ts';
import { groupNormForwardRef } from '../kernels/group-norm/group-norm-reference.ts';
import { layerNormForwardRef } from '../kernels/layer-norm/layer-norm-reference.ts';
import { linearForwardRef } from '../kernels/linear/linear-reference.ts';
import { matmulForwardRef } from '../kernels/matmul/matmul-reference.ts';
import { quickGeluForwardRef } from '../kernels/quick-gelu/quick-gelu-reference.ts';
import { meanForwardRef } from '../kernels/reduce/reduce-reference.ts';
import { siluForwardRef } from '../kernels/silu/silu-reference.ts';
import { timestepEmbeddingForwardRef } from '../kernels/timestep-embedding/timestep-embedding-reference.ts';
import { transposeForwardRef } from '../kernels/transpose/transpose-reference.ts';
import { upsampleNearest2xForwardRef } from '../kernels/upsample/upsample-reference.ts';
import { Params, ParamShapeError } from '../models/params.ts';
import { parseSafetensors, writeSafetensors } from '../packs/safetensors.ts';
import { OnnxTracer, TraceParams, type TraceValue } from './onnx-tracer.ts';
import { OrtSession, type OrtArray, type OrtIntArray } from './ort.ts';

// fp32 ORT (wasm) vs float64 references, relative to each output's largest magnitude.
const TOL = { rtol: 1e-5, atol: 1e-6 };

type Feeds = Record<string, OrtArray | OrtIntArray>;

async function run(t: OnnxTracer, feeds: Feeds, externalData?: { path: string; data: Uint8Array }[]) {
  const session = await OrtSession.create(t.encode(), { backend: 'wasm', externalData });
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

/** One float input with seeded normal data. */
function input(
  t: OnnxTracer,
  feeds: Feeds,
  name: string,
  shape: number[],
  seed: number,
  scale = 1,
): [TraceValue, Float32Array] {
  const data = rng(seed).normals(
    shape.reduce((a, b) => a * b, 1),
    scale,
  );
  feeds[name] = { data, dims: shape };
  return [t.input(name, shape), data];
}

describe('OnnxTracer ops on onnxruntime-web (wasm) vs CPU references', () => {
  it('linear (3-D with bias, 2-D without), matmul with batch broadcasting', async () => {
    const t = new OnnxTracer();
    const f: Feeds = {};
    const [x, xd] = input(t, f, 'x', [2, 5, 7], 1);
    const [w, wd] = input(t, f, 'w', [3, 7], 2);
    const [b, bd] = input(t, f, 'b', [3], 3);
    const [x2, x2d] = input(t, f, 'x2', [4, 7], 4);
    const [a, ad] = input(t, f, 'a', [2, 3, 5, 6], 5);
    const [m, md] = input(t, f, 'm', [6, 4], 6);
    t.output('lin', t.linear(x, w, b));
    t.output('lin2', t.linear(x2, w));
    t.output('mm', t.matmul(a, m));
    expect(t.shape(t.linear(x, w, b))).toEqual([2, 5, 3]);
    const out = await run(t, f);
    expect(out.lin.dims).toEqual([2, 5, 3]);
    assertClose(out.lin.data, linearForwardRef(xd, wd, bd, 7, 3), TOL, 'linear 3-D');
    assertClose(out.lin2.data, linearForwardRef(x2d, wd, null, 7, 3), TOL, 'linear 2-D');
    expect(out.mm.dims).toEqual([2, 3, 5, 4]);
    assertClose(out.mm.data, matmulForwardRef(ad, [2, 3, 5, 6], md, [6, 4]), TOL, 'matmul');
  });

  it('conv2d: 3×3 pad 1 with bias, stride 2 with asymmetric [0, 0, 1, 1] padding, patchify without bias', async () => {
    const t = new OnnxTracer();
    const f: Feeds = {};
    const [x, xd] = input(t, f, 'x', [2, 3, 7, 9], 1);
    const [w, wd] = input(t, f, 'w', [5, 3, 3, 3], 2, 0.3);
    const [b, bd] = input(t, f, 'b', [5], 3);
    const [wp, wpd] = input(t, f, 'wp', [4, 3, 2, 3], 4, 0.3);
    t.output('c1', t.conv2d(x, w, b, { padding: 1 }));
    t.output('c2', t.conv2d(x, w, b, { stride: 2, padding: [0, 0, 1, 1] }));
    t.output('c3', t.conv2d(x, wp, null, { stride: 2 }));
    const out = await run(t, f);
    const geo = (kh: number, kw: number, Cout: number, stride: number, [pt, pl, pb, pr]: number[]) => ({
      B: 2,
      Cin: 3,
      H: 7,
      W: 9,
      Cout,
      kh,
      kw,
      stride,
      padTop: pt,
      padLeft: pl,
      padBottom: pb,
      padRight: pr,
    });
    expect(out.c1.dims).toEqual([2, 5, 7, 9]);
    assertClose(out.c1.data, conv2dForwardRef(geo(3, 3, 5, 1, [1, 1, 1, 1]), xd, wd, bd), TOL, 'conv pad 1');
    expect(out.c2.dims).toEqual([2, 5, 3, 4]);
    assertClose(
      out.c2.data,
      conv2dForwardRef(geo(3, 3, 5, 2, [0, 0, 1, 1]), xd, wd, bd),
      TOL,
      'conv stride 2 asymmetric',
    );
    expect(out.c3.dims).toEqual([2, 4, 3, 4]);
    assertClose(out.c3.data, conv2dForwardRef(geo(2, 3, 4, 2, [0, 0, 0, 0]), xd, wpd, null), TOL, 'conv 2×3 stride 2');
  });

  it('groupNorm (rank 4 with fused SiLU, rank 3) and layerNorm', async () => {
    const t = new OnnxTracer();
    const f: Feeds = {};
    const [x, xd] = input(t, f, 'x', [2, 12, 5, 3], 1, 2);
    const [g, gd] = input(t, f, 'g', [12], 2);
    const [b, bd] = input(t, f, 'b', [12], 3);
    const [s, sd] = input(t, f, 's', [3, 12, 7], 4);
    const [l, ld] = input(t, f, 'l', [2, 3, 12], 5);
    t.output('gn', t.groupNorm(x, 4, g, b, 1e-6, { silu: true }));
    t.output('gn3', t.groupNorm(s, 3, g, b, 1e-5));
    t.output('ln', t.layerNorm(l, g, b, 1e-5));
    const out = await run(t, f);
    const ref = groupNormForwardRef(xd, { batch: 2, channels: 12, spatial: 15, groups: 4 }, gd, bd, 1e-6, true).y;
    assertClose(out.gn.data, ref, TOL, 'group norm + silu');
    assertClose(
      out.gn3.data,
      groupNormForwardRef(sd, { batch: 3, channels: 12, spatial: 7, groups: 3 }, gd, bd, 1e-5).y,
      TOL,
      'group norm rank 3',
    );
    assertClose(out.ln.data, layerNormForwardRef(ld, 12, gd, bd, 1e-5).y, TOL, 'layer norm');
  });

  it.each(['matmul', 'mha'] as const)(
    'attention (%s): self, causal, cross with another length and scale',
    async (mode) => {
      const t = new OnnxTracer({ attention: mode });
      const f: Feeds = {};
      const [q, qd] = input(t, f, 'q', [2, 9, 12], 1);
      const [k, kd] = input(t, f, 'k', [2, 9, 12], 2);
      const [v, vd] = input(t, f, 'v', [2, 9, 12], 3);
      const [kc, kcd] = input(t, f, 'kc', [2, 5, 12], 4);
      const [vc, vcd] = input(t, f, 'vc', [2, 5, 12], 5);
      t.output('self', t.attention(q, k, v, 3));
      t.output('causal', t.attention(q, k, v, 3, { causal: true }));
      t.output('cross', t.attention(q, kc, vc, 2, { scale: 0.7 }));
      expect([...t.opCounts().keys()].includes('com.microsoft.MultiHeadAttention')).toBe(mode === 'mha');
      const out = await run(t, f);
      const dims = (nk: number, heads: number, scale: number, causal: boolean) => ({
        batch: 2,
        nq: 9,
        nk,
        heads,
        headDim: 12 / heads,
        scale,
        causal,
      });
      assertClose(out.self.data, attentionForwardRef(qd, kd, vd, dims(9, 3, 1 / 2, false)).o, TOL, 'self');
      assertClose(out.causal.data, attentionForwardRef(qd, kd, vd, dims(9, 3, 1 / 2, true)).o, TOL, 'causal');
      assertClose(out.cross.data, attentionForwardRef(qd, kcd, vcd, dims(5, 2, 0.7, false)).o, TOL, 'cross');
    },
  );

  it('activations: silu, gelu (erf), quickGelu, geglu', async () => {
    const t = new OnnxTracer();
    const f: Feeds = {};
    const [x, xd] = input(t, f, 'x', [3, 10], 1, 2);
    t.output('silu', t.silu(x));
    t.output('gelu', t.gelu(x));
    t.output('quick', t.quickGelu(x));
    t.output('geglu', t.geglu(x));
    const out = await run(t, f);
    assertClose(out.silu.data, siluForwardRef(xd), TOL, 'silu');
    assertClose(out.gelu.data, geluForwardRef(xd), TOL, 'gelu');
    assertClose(out.quick.data, quickGeluForwardRef(xd), TOL, 'quickGelu');
    expect(out.geglu.dims).toEqual([3, 5]);
    assertClose(out.geglu.data, gegluForwardRef(xd, 5), TOL, 'geglu');
  });

  it('add/sub/mul with broadcasting, scale, mean', async () => {
    const t = new OnnxTracer();
    const f: Feeds = {};
    const [a, ad] = input(t, f, 'a', [2, 3, 4], 1);
    const [b, bd] = input(t, f, 'b', [3, 1], 2);
    const [c, cd] = input(t, f, 'c', [1], 3);
    t.output('add', t.add(a, b));
    t.output('sub', t.sub(b, a));
    t.output('mul', t.mul(a, c));
    t.output('scale', t.scale(a, -0.375));
    t.output('mean', t.mean(a, [1, 2]));
    t.output('meanKeep', t.mean(a, [0, 2], true));
    const out = await run(t, f);
    assertClose(out.add.data, binaryForwardRef('add', ad, [2, 3, 4], bd, [3, 1]).y, TOL, 'add');
    assertClose(out.sub.data, binaryForwardRef('sub', bd, [3, 1], ad, [2, 3, 4]).y, TOL, 'sub');
    assertClose(out.mul.data, binaryForwardRef('mul', ad, [2, 3, 4], cd, [1]).y, TOL, 'mul');
    assertClose(
      out.scale.data,
      Array.from(ad, (v) => v * -0.375),
      TOL,
      'scale',
    );
    expect(out.mean.dims).toEqual([2]);
    assertClose(out.mean.data, meanForwardRef(ad, [2, 3, 4], [1, 2]).y, TOL, 'mean');
    expect(out.meanKeep.dims).toEqual([1, 3, 1]);
    assertClose(out.meanKeep.data, meanForwardRef(ad, [2, 3, 4], [0, 2], true).y, TOL, 'mean keepDims');
  });

  it('layout: reshape, transpose, concat, slice, broadcastTo, upsampleNearest2x', async () => {
    const t = new OnnxTracer();
    const f: Feeds = {};
    const [x, xd] = input(t, f, 'x', [2, 3, 4, 5], 1);
    const [y, yd] = input(t, f, 'y', [2, 2, 4, 5], 2);
    const [r, rd] = input(t, f, 'r', [1, 3, 1], 3);
    t.output('reshape', t.reshape(x, [6, -1]));
    t.output('transpose', t.transpose(x, [0, 2, 3, 1]));
    t.output('concat', t.concat([x, y], 1));
    t.output('slice', t.slice(x, 2, 1, 2));
    t.output('bcast', t.broadcastTo(r, [2, 3, 4]));
    t.output('up', t.upsampleNearest2x(y));
    const out = await run(t, f);
    expect(out.reshape.dims).toEqual([6, 20]);
    assertClose(out.reshape.data, xd, { rtol: 0, atol: 0 }, 'reshape');
    assertClose(
      out.transpose.data,
      transposeForwardRef(xd, [2, 3, 4, 5], [0, 2, 3, 1]),
      { rtol: 0, atol: 0 },
      'transpose',
    );
    assertClose(
      out.concat.data,
      concatForwardRef(
        [xd, yd],
        [
          [2, 3, 4, 5],
          [2, 2, 4, 5],
        ],
        1,
      ),
      { rtol: 0, atol: 0 },
      'concat',
    );
    assertClose(out.slice.data, sliceForwardRef(xd, [2, 3, 4, 5], 2, 1, 2), { rtol: 0, atol: 0 }, 'slice');
    expect(out.bcast.dims).toEqual([2, 3, 4]);
    assertClose(
      out.bcast.data,
      Array.from({ length: 24 }, (_, i) => rd[Math.floor(i / 4) % 3]),
      { rtol: 0, atol: 0 },
      'broadcastTo',
    );
    expect(out.up.dims).toEqual([2, 2, 8, 10]);
    assertClose(out.up.data, upsampleNearest2xForwardRef(yd, 4, 4, 5), { rtol: 0, atol: 0 }, 'upsample');
  });

  it('embedding (int64 ids) and timestep embedding (flipped/unflipped, shift, odd dim, t up to 999)', async () => {
    const t = new OnnxTracer();
    const f: Feeds = {};
    const [table, td] = input(t, f, 'table', [11, 6], 1);
    const ids = [3, 0, 10, 3, 7, 1];
    f.ids = { data: BigInt64Array.from(ids, BigInt), dims: [2, 3] };
    const times = [0, 1, 250.5, 999];
    f.t = { data: Float32Array.from(times), dims: [4] };
    const tv = t.input('t', [4]);
    t.output('emb', t.embedding(t.input('ids', [2, 3], 'int64'), table));
    t.output('sd', t.timestepEmbedding(tv, 32, { flipSinToCos: true, downscaleFreqShift: 0 }));
    t.output('odd', t.timestepEmbedding(tv, 9, { flipSinToCos: false, downscaleFreqShift: 1, maxPeriod: 500 }));
    const out = await run(t, f);
    expect(out.emb.dims).toEqual([2, 3, 6]);
    assertClose(out.emb.data, embeddingForwardRef(ids, td, 6), { rtol: 0, atol: 0 }, 'embedding');
    // Angles as PyTorch rounds them (fp32 t·f); sin/cos of angles up to ~1000 rad after the 2π reduction.
    const ref = timestepEmbeddingForwardRef(times, 32, { flipSinToCos: true, downscaleFreqShift: 0 }, true);
    assertClose(out.sd.data, ref, { rtol: 0, atol: 2e-6 }, 'timestep embedding');
    const odd = timestepEmbeddingForwardRef(
      times,
      9,
      { flipSinToCos: false, downscaleFreqShift: 1, maxPeriod: 500 },
      true,
    );
    expect(out.odd.dims).toEqual([4, 9]);
    assertClose(out.odd.data, odd, { rtol: 0, atol: 2e-6 }, 'timestep embedding, odd dim');
  });
});

describe('TraceParams: initializers in safetensors files', () => {
  // A small "checkpoint": a linear layer stored F32 in one file and as F16 in another.
  const r = rng(9);
  const w = r.normals(4 * 6);
  const b = r.normals(4);
  const f32File = writeSafetensors([
    { name: 'proj.weight', dtype: 'F32', shape: [4, 6], data: w },
    { name: 'proj.bias', dtype: 'F32', shape: [4], data: b },
  ]);
  const f16File = writeSafetensors([
    { name: 'proj.weight', dtype: 'F16', shape: [4, 6], data: w },
    { name: 'proj.bias', dtype: 'F16', shape: [4], data: b },
  ]);

  function trace(file: Uint8Array, location: string) {
    const t = new OnnxTracer();
    const p = new Params(new TraceParams(t, [{ header: parseSafetensors(file), location }])).sub('proj');
    const x = t.input('x', [3, 6]);
    t.output('y', t.linear(x, p.get('weight', [4, 6]), p.get('bias', [4])));
    // asked twice, added once
    expect(p.get('weight', [4, 6]).name).toBe(p.get('weight', [4, 6]).name);
    return t;
  }

  it('F32 tensors are external initializers at their file offsets; F16 ones get a Cast', async () => {
    const x = r.normals(18);
    const t32 = trace(f32File, 'weights/f32.safetensors');
    const model = t32.model();
    const init = model.graph.initializers!.find((i) => i.name === 'proj.weight')!;
    const info = parseSafetensors(f32File).info('proj.weight');
    expect(init.external).toEqual({
      location: 'weights/f32.safetensors',
      offset: info.fileOffset,
      length: info.byteLength,
    });
    expect(init.data).toBeUndefined();
    expect(t32.externalLocations()).toEqual(['weights/f32.safetensors']);
    const y32 = await run(t32, { x: { data: x, dims: [3, 6] } }, [{ path: 'weights/f32.safetensors', data: f32File }]);
    assertClose(y32.y.data, linearForwardRef(x, w, b, 6, 4), TOL, 'F32 weights');

    const t16 = trace(f16File, 'f16.safetensors');
    expect(t16.opCounts().get('Cast')).toBe(2);
    const y16 = await run(t16, { x: { data: x, dims: [3, 6] } }, [{ path: 'f16.safetensors', data: f16File }]);
    // fp16-rounded weights are exact in fp32: only the matmul's rounding remains.
    assertClose(y16.y.data, linearForwardRef(x, roundToF16(w), roundToF16(b), 6, 4), TOL, 'F16 weights');
  });

  it('refuses a parameter whose stored shape differs from the config, and a missing one, by name', () => {
    const t = new OnnxTracer();
    const p = new Params(new TraceParams(t, [{ header: parseSafetensors(f32File), location: 'a.safetensors' }]));
    expect(() => p.get('proj.weight', [6, 4])).toThrow(ParamShapeError);
    expect(() => p.get('proj.weight', [6, 4])).toThrow(/'proj.weight' has shape \[4, 6\], the config implies \[6, 4\]/);
    expect(() => p.get('proj.missing', [2])).toThrow(/missing parameter 'proj.missing'/);
    expect(p.has('proj.bias')).toBe(true);
    expect(p.has('proj.missing')).toBe(false);
  });

  it('refuses ill-shaped ops at trace time, and reports unused inputs', () => {
    const t = new OnnxTracer();
    const x = t.input('x', [2, 5]);
    t.input('unused', [3]);
    expect(() => t.linear(x, t.input('w', [4, 6]))).toThrow(/linear/);
    expect(() => t.add(x, t.input('z', [3]))).toThrow(/cannot broadcast/);
    expect(() => t.embedding(x, t.input('table', [4, 2]))).toThrow(/int64/);
    expect(() => t.input('x', [1])).toThrow(/already used/);
    t.output('y', t.silu(x));
    expect(t.unusedInputs()).toEqual(['unused', 'w', 'z', 'table']);
  });
});
