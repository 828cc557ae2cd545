// The trainer's parts, each against an independent computation: the learning-rate schedule,
// the data order, augmentation, the batched prompt encoding (vs one prompt at a time), the
// ‖ΔW‖² identity (vs forming B·A), checkpoint round trip, and the exported encoder packed by
// `likeness pack --encoder`.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertClose } from '../../test/close.ts';
import { testEngine } from '../../test/engine.ts';
import { rng } from '../../test/random.ts';
import { loadTinyPack, TINY_SD } from '../../test/tiny-pack.ts';
import { buildPackFromPaths } from '../packs/pack-build-node.ts';
import { loadPackFromFolder } from '../packs/pack-node.ts';
import { flipHorizontal } from '../pipeline/augment.ts';
import { newImage } from '../image/types.ts';
import { PackRuntime } from '../pipeline/pack-runtime.ts';
import { encodePromptWith, tokenizeWithPlaceholder } from '../pipeline/prompt.ts';
import { encoderFiles, readCheckpoint, writeCheckpoint, type HostTensor } from './encoder-checkpoint.ts';
import { deltaWSquaredNorm, encodePromptsBatched } from './encoder-objective.ts';
import { learningRateAt } from './lr-schedule.ts';
import { encoderConfigFor } from './train-encoder.ts';
import { augmentView, epochOrder, parseBoxes, samplesAt } from './training-data.ts';
import { initTuningEncoder } from '../models/tuning-encoder/tuning-encoder-init.ts';
import { loraTargets } from '../models/tuning-encoder/tuning-encoder-config.ts';

let rt: PackRuntime;
beforeAll(async () => {
  rt = await PackRuntime.open(await testEngine(), await loadTinyPack());
});
afterAll(() => rt?.dispose());

describe('learning-rate schedule', () => {
  it('warms up linearly to the peak, then follows a cosine towards 0', () => {
    const lr = Array.from({ length: 10 }, (_, s) => learningRateAt(s, 10, 1e-4, 2));
    expect(lr[0]).toBeCloseTo(0.5e-4, 18);
    expect(lr[1]).toBeCloseTo(1e-4, 18);
    expect(lr[2]).toBeCloseTo(1e-4, 18); // cos(0)
    expect(lr[6]).toBeCloseTo(0.5e-4, 18); // halfway through the 8 decay steps
    expect(lr[9]).toBeCloseTo(0.5e-4 * (1 + Math.cos((Math.PI * 7) / 8)), 18);
    for (let s = 3; s < 10; s++) expect(lr[s]).toBeLessThan(lr[s - 1]);
    expect(learningRateAt(0, 5, 1e-3, 0)).toBe(1e-3);
    expect(() => learningRateAt(10, 10, 1e-4, 2)).toThrow(RangeError);
  });
});

describe('data order and augmentation', () => {
  it('visits every image once per epoch, in a seeded order that changes between epochs', () => {
    const a = epochOrder(3, 0, 7);
    expect([...a].sort()).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(epochOrder(3, 0, 7)).toEqual(a);
    expect(epochOrder(3, 1, 7)).not.toEqual(a);
    expect(epochOrder(4, 0, 7)).not.toEqual(a);
    const stream = samplesAt(3, 7, 1, 0, 21);
    for (let e = 0; e < 3; e++) expect(stream.slice(7 * e, 7 * e + 7)).toEqual(epochOrder(3, e, 7));
    expect(samplesAt(3, 7, 1, 5, 4)).toEqual(stream.slice(5, 9));
  });

  it('cuts each epoch to whole batches, so no batch repeats an image', () => {
    // 7 images, batches of 3: each epoch serves the first 6 of its order, in two batches.
    const stream = samplesAt(9, 7, 3, 0, 30);
    for (let b = 0; b < 10; b++) {
      const e = Math.floor(b / 2);
      const batch = stream.slice(3 * b, 3 * b + 3);
      expect(batch).toEqual(epochOrder(9, e, 7).slice(3 * (b % 2), 3 * (b % 2) + 3));
      expect(new Set(batch).size).toBe(3);
    }
    expect(() => samplesAt(9, 2, 3, 0, 3)).toThrow(/cannot fill a batch/);
  });

  it('augments by a square crop of 7/8…1 of the side and a mirror', () => {
    const img = newImage(16, 16);
    for (let i = 0; i < img.data.length; i++) img.data[i] = (i * 37) % 251;
    const same = augmentView(img, { zoom: 1, offsetX: 0.3, offsetY: 0.9, flip: 0 }, 16);
    expect(same.data).toEqual(img.data);
    expect(augmentView(img, { zoom: 1, offsetX: 0, offsetY: 0, flip: 0.75 }, 16).data).toEqual(
      flipHorizontal(img).data,
    );
    // zoom 0: a 14 × 14 crop (7/8 of 16), bottom-right corner for offsets → 1.
    const crop = augmentView(img, { zoom: 0, offsetX: 0.999, offsetY: 0.999, flip: 0 }, 14);
    expect(crop.width).toBe(14);
    for (let y = 0; y < 14; y++) {
      for (let x = 0; x < 14; x++) expect(crop.data[(y * 14 + x) * 4]).toBe(img.data[((y + 2) * 16 + x + 2) * 4]);
    }
  });

  it('parses --boxes and refuses malformed ones', () => {
    expect(parseBoxes('{"a.png": [1, 2, 30], "b.jpg": {"x": 0, "y": 5, "size": 10}}')).toEqual(
      new Map([
        ['a.png', { x: 1, y: 2, size: 30 }],
        ['b.jpg', { x: 0, y: 5, size: 10 }],
      ]),
    );
    expect(() => parseBoxes('{"a.png": [1, 2]}')).toThrow(/\[x, y, size\]/);
    expect(() => parseBoxes('[1, 2, 3]')).toThrow(/object/);
  });
});

describe('objective parts on the engine', () => {
  it('batched prompt encoding equals encoding each prompt alone with its own v*', async () => {
    const { engine, ops } = rt;
    const C = rt.tokenDim;
    const tokens = [
      tokenizeWithPlaceholder(rt, 'a photo of a S*', 'S*', 320),
      tokenizeWithPlaceholder(rt, 'a rendering of S* and S* on a beach', 'S*', 1125),
      tokenizeWithPlaceholder(rt, 'no placeholder here', 'S*', 0),
    ];
    const v = rng(4).normals(3 * C, 0.3);
    const { batched, single } = await engine.noGrad(() =>
      engine.scopeAsync(async () => {
        const batched = await encodePromptsBatched(
          ops,
          rt.text.params,
          rt.text.config,
          tokens,
          engine.tensor(v, [3, C]),
        ).read();
        const single = [];
        for (let b = 0; b < 3; b++) {
          single.push(
            ...(await encodePromptWith(
              ops,
              rt.text.params,
              rt.text.config,
              tokens[b],
              engine.tensor(v.subarray(b * C, (b + 1) * C), [C]),
            ).read()),
          );
        }
        return { batched, single };
      }),
    );
    // Same kernels, a batch of 3 instead of 1: fp32 reduction order may differ slightly.
    assertClose(batched, single, { rtol: 1e-5, atol: 1e-6 }, 'C (batched vs single)');
  });

  it('‖ΔW‖² from the r × r identity equals ‖s·B·A‖²_F formed explicitly, averaged over the batch', async () => {
    const { engine, ops } = rt;
    const [n, r, inDim, outDim, s] = [2, 3, 7, 5, 0.75];
    const g = rng(12);
    const layers = [
      { A: g.normals(n * r * inDim), B: g.normals(n * outDim * r) },
      { A: g.normals(n * r * outDim), B: g.normals(n * inDim * r) },
    ];
    let want = 0;
    for (const [i, l] of layers.entries()) {
      const [di, dout] = i === 0 ? [inDim, outDim] : [outDim, inDim];
      for (let b = 0; b < n; b++) {
        for (let o = 0; o < dout; o++) {
          for (let c = 0; c < di; c++) {
            let w = 0;
            for (let k = 0; k < r; k++) w += l.B[(b * dout + o) * r + k] * l.A[(b * r + k) * di + c];
            want += (s * w) ** 2 / n;
          }
        }
      }
    }
    const got = await engine.scopeAsync(async () => {
      const map = new Map([
        ['x', { A: engine.tensor(layers[0].A, [n, r, inDim]), B: engine.tensor(layers[0].B, [n, outDim, r]) }],
        ['y', { A: engine.tensor(layers[1].A, [n, r, outDim]), B: engine.tensor(layers[1].B, [n, inDim, r]) }],
      ]);
      return deltaWSquaredNorm(ops, { layers: map, scale: s }).read();
    });
    assertClose(got, [want], { rtol: 1e-5, atol: 0 }, '‖ΔW‖²');
  });
});

describe('checkpoint and export', () => {
  it('a checkpoint round-trips exactly; the exported encoder packs with `likeness pack --encoder` and loads', async () => {
    const config = encoderConfigFor(rt);
    const targets = loraTargets(rt.unet.config);
    const init = initTuningEncoder(config, targets, 5);
    // Pretend-trained weights: B heads no longer zero.
    const params = new Map<string, HostTensor>(
      [...init].map(([k, t]) => [k, { shape: t.shape, data: t.data.map((x, i) => x + 1e-3 * Math.sin(i)) }]),
    );
    const moments = new Map([...params].map(([k, t]) => [k, { shape: t.shape, data: t.data.map((x) => x * x) }]));
    const state = {
      step: 12,
      adamStep: 12,
      options: { anything: 1 },
      config,
      images: ['a.png', 'b.png'],
      rng: { generator: 'philox4x32-10' as const, seed: 3, stream: 13 },
      dataOrder: { consumed: 24, epoch: 12, position: 0, order: [1, 0] },
      pack: { name: 'tiny', hash: rt.hash },
      params,
      adamM: moments,
      adamV: moments,
    };
    const back = readCheckpoint(writeCheckpoint(state));
    expect({ ...back, params: null, adamM: null, adamV: null }).toEqual({
      ...state,
      params: null,
      adamM: null,
      adamV: null,
    });
    for (const [k, t] of params) {
      expect(back.params.get(k)!.data).toEqual(t.data);
      expect(back.adamV.get(k)!.data).toEqual(moments.get(k)!.data);
    }
    expect(() => readCheckpoint(encoderFiles(config, params, 'x').weights)).toThrow(/not an encoder checkpoint/);

    // Export → pack → runtime: the pack's encoder is marked trained and holds our weights.
    const dir = mkdtempSync(join(tmpdir(), 'likeness-encoder-'));
    const { configJson, weights } = encoderFiles(config, params, 'test');
    writeFileSync(join(dir, 'config.json'), configJson);
    writeFileSync(join(dir, 'model.safetensors'), weights);
    const packDir = join(dir, 'pack');
    await buildPackFromPaths({ from: TINY_SD, out: packDir, name: 'tiny-trained', encoder: dir });
    const rt2 = await PackRuntime.open(rt.engine, await loadPackFromFolder(packDir));
    try {
      expect(rt2.encoder?.config.trained).toBe(true);
      const name = 'hyper.b_heads.32.weight';
      const t = params.get(name)!;
      expect(await rt2.encoder!.params.get(name, t.shape).read()).toEqual(t.data);
    } finally {
      rt2.dispose();
    }
  });
});
