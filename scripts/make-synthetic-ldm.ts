// npx tsx scripts/make-synthetic-ldm.ts --out <file.safetensors> [--variant sd15|sd21] [--dtype F32|F16|BF16] [--ema] [--seed <n>]
// Writes a random-weight single-file SD checkpoint in the original LDM layout with every
// name and shape of ../shared/data/reference/single-file/sd{15,21}-ldm.keys.json (real
// size: 4.3 / 5.2 GB in fp32), streamed to disk a piece at a time. --ema adds the
// `model_ema.*` UNet copies and the schedule buffers of a non-pruned release. For
// measuring `likeness pack --from <file>` at real size; the values mean nothing.
import { closeSync, openSync, writeSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { f32ToF16Bits } from '../src/engine/dtype.ts';
import { emaName } from '../src/packs/ldm-convert.ts';
import { dtypeSize, f32ToBf16Bits, planSafetensorsLayout, type SafetensorsDType } from '../src/packs/safetensors.ts';

const { values: a } = parseArgs({
  options: {
    out: { type: 'string' },
    variant: { type: 'string', default: 'sd15' },
    dtype: { type: 'string', default: 'F32' },
    ema: { type: 'boolean', default: false },
    seed: { type: 'string', default: '1' },
  },
});
if (!a.out || !['sd15', 'sd21'].includes(a.variant) || !['F32', 'F16', 'BF16'].includes(a.dtype)) {
  console.log(
    'usage: npx tsx scripts/make-synthetic-ldm.ts --out <file.safetensors> [--variant sd15|sd21] [--dtype F32|F16|BF16] [--ema] [--seed <n>]',
  );
  process.exit(2);
}
const dtype = a.dtype as SafetensorsDType;
const keysFile = new URL(`../../shared/data/reference/single-file/${a.variant}-ldm.keys.json`, import.meta.url);
const keys = (JSON.parse(readFileSync(keysFile, 'utf8')).keys as { name: string; shape: number[] }[]).map((k) => ({
  ...k,
}));
if (a.ema) {
  for (const k of [...keys])
    if (k.name.startsWith('model.diffusion_model.')) keys.push({ name: emaName(k.name), shape: k.shape });
  keys.push({ name: 'alphas_cumprod', shape: [1000] }, { name: 'betas', shape: [1000] });
}
const numel = (s: number[]) => s.reduce((x, y) => x * y, 1);
const layout = planSafetensorsLayout(
  keys.map((k) => ({ name: k.name, dtype, shape: k.shape, byteLength: numel(k.shape) * dtypeSize(dtype) })),
  { format: 'pt' },
);
const fd = openSync(a.out, 'w');
writeSync(fd, layout.header);
let state = Number(a.seed) >>> 0 || 1;
const PIECE = 1 << 20;
const buf = new Uint8Array(PIECE * 4);
const dv = new DataView(buf.buffer);
const t0 = performance.now();
for (const t of layout.tensors) {
  const n = numel([...t.shape]);
  for (let i = 0; i < n; i += PIECE) {
    const count = Math.min(PIECE, n - i);
    for (let j = 0; j < count; j++) {
      // xorshift32 → uniform in ±0.02: small like trained weights, cheap to make
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      const v = ((state >>> 0) / 4294967296 - 0.5) * 0.04;
      if (dtype === 'F32') dv.setFloat32(4 * j, v, true);
      else dv.setUint16(2 * j, dtype === 'F16' ? f32ToF16Bits(v) : f32ToBf16Bits(v), true);
    }
    writeSync(fd, buf, 0, count * dtypeSize(dtype));
  }
}
closeSync(fd);
console.log(
  `${a.out}: ${keys.length} tensors, ${(layout.fileSize / 1e9).toFixed(2)} GB in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
);
