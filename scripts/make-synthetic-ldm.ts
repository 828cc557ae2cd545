// npx tsx scripts/make-synthetic-ldm.ts --out <file.safetensors> [--variant sd15|sd21] [--dtype F32|F16|BF16] [--ema] [--seed <n>]
// npx tsx scripts/make-synthetic-ldm.ts --out <file.safetensors> --config-out <dir> [--variant sd15|sd21|sd21-base]
//   [--dtype F32|F16] [--image-size <px>] [--unet-layers <n>] [--vae-layers <n>] [--text-layers <n>]
//   [--vision-layers <n>] [--vision-image-size <px>] [--tokenizer] [--seed <n>]
// Writes a random-weight single-file SD checkpoint in the original LDM layout with every
// name and shape of ../shared/data/reference/single-file/sd{15,21}-ldm.keys.json (real
// size: 4.3 / 5.2 GB in fp32), streamed to disk a piece at a time. --ema adds the
// `model_ema.*` UNet copies and the schedule buffers of a non-pruned release. For
// measuring `likeness pack --from <file>` at real size; the values mean nothing.
// With --config-out (the second form) it writes src/packs/synthetic-ldm.ts's checkpoint
// instead: real widths with the given cuts (fewer layers, a smaller image), and the configs
// and image encoder such a file needs in <dir> (pack it with --config <dir>); --tokenizer
// adds tokenizer/ there (without it the builder uses the bundled merges).
import { closeSync, openSync, writeSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { f32ToF16Bits } from '../src/engine/dtype.ts';
import { emaName } from '../src/packs/ldm-convert.ts';
import { writeSyntheticLdm } from '../src/packs/synthetic-ldm.ts';
import type { SyntheticVariant } from '../src/packs/synthetic-sd.ts';
import { dtypeSize, f32ToBf16Bits, planSafetensorsLayout, type SafetensorsDType } from '../src/packs/safetensors.ts';

const { values: a } = parseArgs({
  options: {
    out: { type: 'string' },
    variant: { type: 'string', default: 'sd15' },
    dtype: { type: 'string', default: 'F32' },
    ema: { type: 'boolean', default: false },
    seed: { type: 'string', default: '1' },
    'config-out': { type: 'string' },
    'image-size': { type: 'string' },
    'unet-layers': { type: 'string' },
    'vae-layers': { type: 'string' },
    'text-layers': { type: 'string' },
    'vision-layers': { type: 'string' },
    'vision-image-size': { type: 'string' },
    tokenizer: { type: 'boolean', default: false },
  },
});
if (a['config-out'] !== undefined) {
  const num = (s: string | undefined, flag: string) => {
    if (s === undefined) return undefined;
    const n = Number(s);
    if (!Number.isInteger(n)) throw new Error(`${flag} must be an integer, got ${JSON.stringify(s)}`);
    return n;
  };
  if (!a.out || !['F32', 'F16'].includes(a.dtype) || a.ema) {
    console.log(
      'usage: npx tsx scripts/make-synthetic-ldm.ts --out <file.safetensors> --config-out <dir> [--variant sd15|sd21|sd21-base] [--dtype F32|F16] [--image-size <px>] [--unet-layers <n>] [--vae-layers <n>] [--text-layers <n>] [--vision-layers <n>] [--vision-image-size <px>] [--tokenizer] [--seed <n>]',
    );
    process.exit(2);
  }
  writeSyntheticLdm({
    out: a.out,
    configOut: a['config-out'],
    tokenizer: a.tokenizer,
    variant: a.variant as SyntheticVariant,
    dtype: a.dtype === 'F16' ? 'fp16' : 'fp32',
    imageSize: num(a['image-size'], '--image-size'),
    unetLayersPerBlock: num(a['unet-layers'], '--unet-layers'),
    vaeLayersPerBlock: num(a['vae-layers'], '--vae-layers'),
    textLayers: num(a['text-layers'], '--text-layers'),
    visionLayers: num(a['vision-layers'], '--vision-layers'),
    visionImageSize: num(a['vision-image-size'], '--vision-image-size'),
    seed: num(a.seed, '--seed'),
    log: (l) => console.log(l),
  });
  process.exit(0);
}
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
