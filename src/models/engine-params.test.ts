// SafetensorsParams: streamed uploads in bounded chunks, the fp16 policy, and what SD 1.5's
// weights occupy on the GPU under it.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { roundToF16 } from '../engine/dtype.ts';
import { parseSafetensors, writeSafetensors } from '../packs/safetensors.ts';
import { testEngine } from '../../test/engine.ts';
import { rng } from '../../test/random.ts';
import { fileSource, frozenWeightsF16, openSafetensorsSource, SafetensorsParams } from './engine-params.ts';

const KEYS = new URL('../../../shared/data/reference/keys/', import.meta.url);

function file() {
  const r = rng(12);
  const conv = r.normals(6 * 3 * 3 * 3);
  const lin = r.normals(5 * 7);
  const bias = r.normals(6);
  const table = r.normals(11 * 4);
  const bytes = writeSafetensors([
    { name: 'conv.weight', dtype: 'F16', shape: [6, 3, 3, 3], data: conv },
    { name: 'conv.bias', dtype: 'F16', shape: [6], data: bias },
    { name: 'proj.weight', dtype: 'F32', shape: [5, 7], data: lin },
    { name: 'token_embedding.weight', dtype: 'BF16', shape: [11, 4], data: table },
  ]);
  return { bytes, conv, lin, bias, table };
}

describe('SafetensorsParams', () => {
  it('streams each tensor in chunks no larger than chunkBytes, exactly as the whole-file path uploads it', async () => {
    const e = await testEngine();
    const f = file();
    const reads: number[] = [];
    const src = await openSafetensorsSource(async (s, end) => {
      reads.push(end - s);
      return f.bytes.slice(s, end);
    }, f.bytes.length);
    const opts = { f16: frozenWeightsF16, f32ToF16: true, chunkBytes: 24 };
    const streamed = new SafetensorsParams(e, [src], opts);
    expect(() => streamed.get('conv.weight', [6, 3, 3, 3])).toThrow(/preload/);
    await streamed.preload();
    const whole = new SafetensorsParams(e, [parseSafetensors(f.bytes)], opts);
    try {
      // After the header (two reads): every read at most 24 bytes, rounded down to 4 whole elements.
      expect(Math.max(...reads.slice(2))).toBeLessThanOrEqual(24);
      const parsed = parseSafetensors(f.bytes);
      for (const [name, shape, dtype] of [
        ['conv.weight', [6, 3, 3, 3], 'f16'],
        ['conv.bias', [6], 'f32'],
        ['proj.weight', [5, 7], 'f16'],
        ['token_embedding.weight', [11, 4], 'f32'],
      ] as const) {
        const a = streamed.get(name, shape);
        expect(a.dtype, name).toBe(dtype);
        const want = dtype === 'f16' ? roundToF16(parsed.float32(name)) : parsed.float32(name);
        expect(await a.read(), name).toEqual(want);
        expect(await whole.get(name, shape).read(), name).toEqual(want);
      }
      expect(streamed.residentBytes).toBe((162 + 35) * 2 + (6 + 44) * 4);
      expect(() => streamed.get('proj.weight', [7, 5])).toThrow(/has shape \[5, 7\]/);
    } finally {
      streamed.dispose();
      whole.dispose();
    }
  });

  it('without an fp16 policy everything is fp32 (the reference mode)', async () => {
    const e = await testEngine();
    const p = new SafetensorsParams(e, [fileSource(parseSafetensors(file().bytes))]);
    try {
      expect(p.get('conv.weight', [6, 3, 3, 3]).dtype).toBe('f32');
    } finally {
      p.dispose();
    }
  });

  // The resident-bytes numbers the README quotes: real SD 1.5 / 2.1 names and shapes.
  it('SD 1.5 and 2.1 weights on the GPU: fp16 linear/conv weights, fp32 rest', () => {
    const bytes = (keysFile: string) => {
      const keys = JSON.parse(readFileSync(new URL(keysFile, KEYS), 'utf8')).keys as { name: string; shape: number[] }[];
      let f16 = 0;
      let f32 = 0;
      for (const k of keys) {
        const n = k.shape.reduce((a, b) => a * b, 1);
        if (frozenWeightsF16(k.name, k.shape)) f16 += n;
        else f32 += n;
      }
      return { resident: f16 * 2 + f32 * 4, allF32: (f16 + f32) * 4 };
    };
    const rows = {
      'sd15 unet': bytes('sd15-unet.keys.json'),
      'sd21 unet': bytes('sd21-unet.keys.json'),
      'vae': bytes('sd-vae.keys.json'),
      'clip-l text': bytes('clip-vit-large-patch14-text.keys.json'),
      'clip-l vision': bytes('clip-vit-large-patch14-vision-with-projection.keys.json'),
    };
    const GB = 1e9;
    for (const [k, v] of Object.entries(rows)) console.log(`${k}: ${(v.resident / GB).toFixed(3)} GB resident (fp32: ${(v.allF32 / GB).toFixed(3)} GB)`);
    // The UNet: 859.5 M parameters, all but ~0.2 % in linear/conv weights → ≈ 1.72 GB.
    expect(rows['sd15 unet'].resident / GB).toBeGreaterThan(1.71);
    expect(rows['sd15 unet'].resident / GB).toBeLessThan(1.73);
    const sd15 = rows['sd15 unet'].resident + rows.vae.resident + rows['clip-l text'].resident + rows['clip-l vision'].resident;
    console.log(`sd15 all four: ${(sd15 / GB).toFixed(3)} GB`);
    expect(sd15 / GB).toBeLessThan(2.9);
  });
});
