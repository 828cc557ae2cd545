// npx tsx scripts/make-synthetic-sd.ts --out <dir> [--variant sd15|sd21|sd21-base] [--fp16]
//   [--image-size <px>] [--unet-layers <n>] [--vae-layers <n>] [--text-layers <n>]
//   [--vision-layers <n>] [--vision-image-size <px>] [--seed <n>]
// Writes a random-weight diffusers folder with the real names, shapes and configs of
// SD 1.5 / 2.1 (see src/packs/synthetic-sd.ts); feed it to `likeness pack --from <dir>`.
import { parseArgs } from 'node:util';
import { writeSyntheticSd, type SyntheticVariant } from '../src/packs/synthetic-sd.ts';

const { values: a } = parseArgs({
  options: {
    out: { type: 'string' },
    variant: { type: 'string', default: 'sd15' },
    fp16: { type: 'boolean', default: false },
    'image-size': { type: 'string' },
    'unet-layers': { type: 'string' },
    'vae-layers': { type: 'string' },
    'text-layers': { type: 'string' },
    'vision-layers': { type: 'string' },
    'vision-image-size': { type: 'string' },
    seed: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
const usage =
  'usage: npx tsx scripts/make-synthetic-sd.ts --out <dir> [--variant sd15|sd21|sd21-base] [--fp16] [--image-size <px>] [--unet-layers <n>] [--vae-layers <n>] [--text-layers <n>] [--vision-layers <n>] [--vision-image-size <px>] [--seed <n>]';
if (a.help || !a.out) {
  console.log(usage);
  process.exit(a.help ? 0 : 2);
}
const num = (s: string | undefined, flag: string) => {
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!Number.isInteger(n)) throw new Error(`${flag} must be an integer, got ${JSON.stringify(s)}`);
  return n;
};
const t0 = performance.now();
writeSyntheticSd({
  out: a.out,
  variant: a.variant as SyntheticVariant,
  dtype: a.fp16 ? 'fp16' : 'fp32',
  imageSize: num(a['image-size'], '--image-size'),
  unetLayersPerBlock: num(a['unet-layers'], '--unet-layers'),
  vaeLayersPerBlock: num(a['vae-layers'], '--vae-layers'),
  textLayers: num(a['text-layers'], '--text-layers'),
  visionLayers: num(a['vision-layers'], '--vision-layers'),
  visionImageSize: num(a['vision-image-size'], '--vision-image-size'),
  seed: num(a.seed, '--seed'),
  log: (l) => console.log(l),
});
console.log(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
