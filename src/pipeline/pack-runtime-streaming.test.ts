// PackRuntime streams weights: headers and tensors by byte range, never a whole weights file
// in one read, and fp16 packs stay fp16 on the GPU (linear and conv weights).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { testEngine } from '../../test/engine.ts';
import { TINY_SD, tinyPackDir } from '../../test/tiny-pack.ts';
import { buildPackSync } from '../packs/pack-build-node.ts';
import { loadPackFromFolder } from '../packs/pack-node.ts';
import type { LoadedPack } from '../packs/pack-loader.ts';
import { parseSafetensors } from '../packs/safetensors.ts';
import { frozenWeightsF16 } from '../models/engine-params.ts';
import { PackRuntime } from './pack-runtime.ts';

interface ReadLog {
  whole: string[];
  ranges: { path: string; bytes: number }[];
}

/** The pack with its reads recorded. */
function counting(pack: LoadedPack): { pack: LoadedPack; log: ReadLog } {
  const log: ReadLog = { whole: [], ranges: [] };
  return {
    log,
    pack: {
      ...pack,
      manifest: pack.manifest,
      read: (path) => {
        log.whole.push(path);
        return pack.read(path);
      },
      readRange: (path, start, end) => {
        log.ranges.push({ path, bytes: end - start });
        return pack.readRange(path, start, end);
      },
    },
  };
}

let fp16Dir: string | null = null;
function fp16PackDir(): string {
  if (!fp16Dir) {
    fp16Dir = mkdtempSync(join(tmpdir(), 'likeness-tiny-fp16-'));
    fp16Dir = join(fp16Dir, 'tiny-fp16');
    buildPackSync(['--from', TINY_SD, '--out', fp16Dir, '--name', 'tiny-fp16', '--fp16', '--no-graphs', '--quiet']);
  }
  return fp16Dir;
}

describe('PackRuntime streams weights', () => {
  it('reads weights files only by range, one tensor (or header) at a time, each byte about once', async () => {
    const engine = await testEngine();
    const { pack, log } = counting(await loadPackFromFolder(tinyPackDir()));
    const rt = await PackRuntime.open(engine, pack);
    try {
      const weightFiles = pack.manifest.files.filter((f) => f.role === 'weights');
      expect(log.whole.filter((p) => weightFiles.some((f) => f.path === p))).toEqual([]);
      for (const f of weightFiles) {
        const file = parseSafetensors(await pack.read(f.path)); // the test's own copy, to compare
        const largest = Math.max(file.dataOffset, ...file.tensors.map((t) => t.byteLength));
        const reads = log.ranges.filter((r) => r.path === f.path);
        expect(Math.max(...reads.map((r) => r.bytes)), f.path).toBeLessThanOrEqual(largest);
        expect(Math.max(...reads.map((r) => r.bytes)), f.path).toBeLessThan(f.bytes);
        const total = reads.reduce((n, r) => n + r.bytes, 0);
        // Every tensor once, the header's 8-byte length field and the header itself.
        expect(total, f.path).toBe(f.bytes + 8);
      }
      // All fp32 here: the tiny pack stores fp32, and 'stored' keeps it.
      expect(rt.residentBytes).toBe(weightFiles.reduce((n, f) => n + f.bytes, 0) - (await headerBytes(pack)));
    } finally {
      rt.dispose();
    }
  });

  it('gathers token-embedding rows on the GPU (no CPU table)', async () => {
    const engine = await testEngine();
    const pack = await loadPackFromFolder(tinyPackDir());
    const rt = await PackRuntime.open(engine, pack);
    try {
      const text = pack.manifest.files.find((f) => f.component === 'text_encoder' && f.role === 'weights')!;
      const table = parseSafetensors(await pack.read(text.path)).float32(
        'text_model.embeddings.token_embedding.weight',
      );
      const C = rt.tokenDim;
      expect(await rt.tokenEmbedding(7)).toEqual(table.slice(7 * C, 8 * C));
      const rows = rt.tokenRows([3, 1, 4, 1], [2, 2]);
      expect(rows.shape).toEqual([2, 2, C]);
      const got = await rows.read();
      rows.dispose();
      [3, 1, 4, 1].forEach((id, i) => expect(got.slice(i * C, (i + 1) * C)).toEqual(table.slice(id * C, (id + 1) * C)));
      expect('tokenTable' in rt).toBe(false);
    } finally {
      rt.dispose();
    }
  });

  it('deferImageEncoder: the vision tower is uploaded only when asked for', async () => {
    const engine = await testEngine();
    const pack = await loadPackFromFolder(tinyPackDir());
    const full = await PackRuntime.open(engine, pack);
    const rt = await PackRuntime.open(engine, pack, { deferImageEncoder: true });
    try {
      const vision = pack.manifest.files.find((f) => f.component === 'image_encoder' && f.role === 'weights')!;
      const header = parseSafetensors(await pack.read(vision.path));
      const visionBytes = header.tensors.reduce((n, t) => n + t.numel * 4, 0);
      expect(rt.residentBytes).toBe(full.residentBytes - visionBytes);
      const name = header.tensors[0].name;
      expect(() => rt.vision.params.get(name, header.tensors[0].shape)).toThrow(/ensureImageEncoder/);
      await Promise.all([rt.ensureImageEncoder(), rt.ensureImageEncoder()]);
      expect(rt.residentBytes).toBe(full.residentBytes);
      expect(await rt.vision.params.get(name, header.tensors[0].shape).read()).toEqual(header.float32(name));
    } finally {
      rt.dispose();
      full.dispose();
    }
  });

  it('an fp16 pack keeps linear and conv weights fp16 on the GPU; biases, norms and tables fp32', async () => {
    const engine = await testEngine();
    const pack = await loadPackFromFolder(fp16PackDir());
    const rt = await PackRuntime.open(engine, pack);
    const asF32 = await PackRuntime.open(engine, pack, { weights: 'f32' });
    try {
      const u = rt.unet.params;
      expect(u.get('conv_in.weight', [32, 4, 3, 3]).dtype).toBe('f16');
      expect(u.get('conv_in.bias', [32]).dtype).toBe('f32');
      expect(u.get('mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight', [64, 32]).dtype).toBe('f16');
      expect(rt.tokenTableTensor().dtype).toBe('f32');
      expect(asF32.unet.params.get('conv_in.weight', [32, 4, 3, 3]).dtype).toBe('f32');
      // Exactly: 2 bytes per value of the policy's weights (not in the tuning encoder), 4 otherwise.
      let want = 0;
      for (const f of pack.manifest.files.filter((x) => x.role === 'weights')) {
        for (const t of parseSafetensors(await pack.read(f.path)).tensors) {
          want += t.numel * (f.component !== 'tuning_encoder' && frozenWeightsF16(t.name, t.shape) ? 2 : 4);
        }
      }
      expect(rt.residentBytes).toBe(want);
      expect(rt.residentBytes).toBeLessThan(asF32.residentBytes);
      expect(rt.unet.params.get('conv_in.weight', [32, 4, 3, 3]).byteLength).toBe(32 * 4 * 9 * 2);
    } finally {
      rt.dispose();
      asF32.dispose();
    }
  });
});

async function headerBytes(pack: LoadedPack): Promise<number> {
  let n = 0;
  for (const f of pack.manifest.files.filter((x) => x.role === 'weights'))
    n += parseSafetensors(await pack.read(f.path)).dataOffset;
  return n;
}
