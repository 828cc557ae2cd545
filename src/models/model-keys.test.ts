// Parameter names and shapes that our model code asks for, against the state dicts of the
// real diffusers / transformers models (../shared/data/reference/keys).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { clipText, clipTokenEmbeddings } from './clip/clip-text.ts';
import { clipVision } from './clip/clip-vision.ts';
import { Params } from './params.ts';
import { ParamRecorder, ShapeOps, type ShapeTensor } from './shape-ops.ts';
import { vaeDecode, vaeEncode } from './vae/vae.ts';
import { checkVaeConfig } from './vae/vae-config.ts';

const REF = new URL('../../../shared/data/reference/', import.meta.url);
const readJson = (path: string) => JSON.parse(readFileSync(new URL(path, REF), 'utf8'));
const t = (shape: number[]): ShapeTensor => ({ shape });

function expectSameKeys(ours: Map<string, number[]>, stem: string) {
  const keys: { name: string; shape: number[] }[] = readJson(`keys/${stem}.keys.json`).keys;
  const theirs = new Map(keys.map((k) => [k.name, k.shape]));
  expect([...ours.keys()].filter((k) => !theirs.has(k)), 'names we ask for that the model lacks').toEqual([]);
  expect([...theirs.keys()].filter((k) => !ours.has(k)), 'names the model has that we never use').toEqual([]);
  for (const [name, shape] of theirs) expect(ours.get(name), name).toEqual(shape);
}

describe('parameter names and shapes equal the real models', () => {
  it('AutoencoderKL (SD VAE)', () => {
    const c = checkVaeConfig(readJson('keys/sd-vae.config.json'));
    const rec = new ParamRecorder();
    const ops = new ShapeOps();
    const { mean, logvar } = vaeEncode(ops, new Params(rec), c, t([1, 3, 64, 64]));
    expect(mean.shape).toEqual([1, 4, 8, 8]);
    expect(logvar.shape).toEqual([1, 4, 8, 8]);
    expect(vaeDecode(ops, new Params(rec), c, t([1, 4, 8, 8])).shape).toEqual([1, 3, 64, 64]);
    expectSameKeys(rec.requested, 'sd-vae');
  });

  it('CLIP ViT-L/14 text encoder', () => {
    const c = readJson('keys/clip-vit-large-patch14-text.config.json');
    const rec = new ParamRecorder();
    const ops = new ShapeOps();
    const p = new Params(rec);
    const emb = clipTokenEmbeddings(ops, p, c, { shape: [2, 77] });
    expect(clipText(ops, p, c, emb, { shape: [2, 77] }).shape).toEqual([2, 77, 768]);
    expectSameKeys(rec.requested, 'clip-vit-large-patch14-text');
  });

  it('CLIP ViT-L/14 vision tower with projection', () => {
    const c = readJson('keys/clip-vit-large-patch14-vision-with-projection.config.json');
    const rec = new ParamRecorder();
    const out = clipVision(new ShapeOps(), new Params(rec), c, t([2, 3, 224, 224]));
    expect(out.lastHiddenState.shape).toEqual([2, 257, 1024]);
    expect(out.imageEmbeds.shape).toEqual([2, 768]);
    expectSameKeys(rec.requested, 'clip-vit-large-patch14-vision-with-projection');
  });
});
