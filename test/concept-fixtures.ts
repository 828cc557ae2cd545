// Shared by the concept-field and concept-mutation tests: the tiny-sd pack's concept shape,
// a seeded concept, the real CLIP vocabulary, and a way to rewrite a concept file's metadata.
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { rng } from './random.ts';
import { loraTargets } from '../src/models/tuning-encoder/tuning-encoder-config.ts';
import { resolveUNetConfig, type UNetConfig } from '../src/models/unet/unet-config.ts';
import { parseSafetensors, writeSafetensors, type SafetensorsTensorInput } from '../src/packs/safetensors.ts';
import { ClipTokenizer } from '../src/pipeline/clip-tokenizer.ts';
import type { ConceptData } from '../src/domain/types.ts';
import type { ConceptPackInfo } from '../src/storage/concept-safetensors.ts';

const REF = new URL('../../shared/data/reference/tiny-sd/', import.meta.url);
const CLIP = new URL('../../shared/data/clip/', import.meta.url);
const unetConfig = JSON.parse(readFileSync(new URL('unet/config.json', REF), 'utf8')) as UNetConfig;

/** OpenAI CLIP's tokenizer (49408 ids), what every SD 1.x/2.x pack uses. */
export const clipTokenizer = new ClipTokenizer(
  gunzipSync(readFileSync(new URL('bpe_simple_vocab_16e6.txt.gz', CLIP))).toString('utf8'),
);

export const FIXTURE_PACK: ConceptPackInfo = {
  hash: 'a3f1c0ffee0000000000000000000000000000000000000000000000000000aa',
  id: 'tiny-sd',
  tokenDim: 32,
  rank: 4,
  targets: loraTargets(resolveUNetConfig(unetConfig)),
  vocabulary: clipTokenizer,
};

export function fixtureConcept(seed = 1): ConceptData {
  const g = rng(seed);
  const r = FIXTURE_PACK.rank;
  return {
    placeholder: '<likeness>',
    embedding: g.normals(FIXTURE_PACK.tokenDim, 0.02),
    nearestWords: ['tabby', 'kitten', 'cat'],
    hardTokenId: 2368,
    rank: r,
    alpha: 4,
    blend: 0.35,
    lora: FIXTURE_PACK.targets.map((t) => ({
      module: t.module,
      A: g.normals(r * t.in, 0.1),
      aShape: [r, t.in] as [number, number],
      B: g.normals(t.out * r, 0.01),
      bShape: [t.out, r] as [number, number],
    })),
    lossCurve: [0.31, 0.27, 0.19],
    packId: FIXTURE_PACK.id,
    packHash: FIXTURE_PACK.hash,
  };
}

/** `bytes` (a concept file) with its tensors and metadata rewritten by `change`. */
export function rewriteConcept(
  bytes: Uint8Array,
  change: (
    tensors: SafetensorsTensorInput[],
    metadata: Record<string, string | undefined>,
  ) => SafetensorsTensorInput[] | void,
): Uint8Array {
  const f = parseSafetensors(bytes);
  const tensors: SafetensorsTensorInput[] = f.tensors.map((t) => ({
    name: t.name,
    dtype: t.dtype,
    shape: [...t.shape],
    data: f.rawBytes(t.name).slice(),
  }));
  const metadata: Record<string, string | undefined> = { ...f.metadata };
  const out = change(tensors, metadata) ?? tensors;
  const kept = Object.fromEntries(Object.entries(metadata).filter(([, v]) => v !== undefined)) as Record<
    string,
    string
  >;
  return writeSafetensors(out, kept);
}
