// The settings a generated image carries in its PNG text chunks: an A1111-style
// "parameters" entry (what other tools and image sites read) and the exact settings as JSON
// under "likeness" (what this app reads back).
import { SAMPLER_LABELS } from '../domain/samplers.ts';
import type { GenerateSettings, RngName } from '../domain/types.ts';
import type { PngTextEntry } from '../image/png-text.ts';

export interface GenerationRecord extends GenerateSettings {
  prompt: string;
  negativePrompt: string;
  /** This image's seed (batch images use consecutive seeds). */
  seed: number;
  runtime: 'onnx' | 'engine';
  /** How the seed became x_T (absent: Likeness' Philox, as before the setting existed). */
  rng?: RngName;
  width: number;
  height: number;
  packId: string | null;
  concept: { name: string; placeholder: string; id: string | null } | null;
  createdAt: number;
}

export function a1111Parameters(g: GenerationRecord): string {
  const fields = [
    ['Steps', g.steps],
    ['Sampler', SAMPLER_LABELS[g.sampler]],
    ['CFG scale', g.guidance],
    ['Seed', g.seed],
    ['Size', `${g.width}x${g.height}`],
    ['Model', g.packId ?? 'unknown'],
    ...(g.concept
      ? [
          ['Concept', `${g.concept.name} (${g.concept.placeholder})`],
          ['Blend', g.blend],
        ]
      : []),
    ['Runtime', g.runtime],
    // Only torch's is named: the seed then reproduces x_T in diffusers / A1111's CPU RNG.
    ...(g.rng === 'torch' ? [['RNG', 'torch CPU']] : []),
  ].map(([k, v]) => `${k}: ${String(v).replace(/[,\n]/g, ' ')}`);
  const lines = [g.prompt];
  if (g.negativePrompt) lines.push(`Negative prompt: ${g.negativePrompt}`);
  lines.push(fields.join(', '));
  return lines.join('\n');
}

export function generationTextEntries(g: GenerationRecord): PngTextEntry[] {
  return [
    { keyword: 'parameters', text: a1111Parameters(g) },
    { keyword: 'Software', text: 'Likeness' },
    { keyword: 'likeness', text: JSON.stringify(g) },
  ];
}

/** A file name for a download: the prompt's first words and the seed. */
export function imageFileName(g: Pick<GenerationRecord, 'prompt' | 'seed'>): string {
  const words =
    g.prompt
      .replace(/[^\p{L}\p{N}]+/gu, ' ')
      .trim()
      .split(' ')
      .slice(0, 6)
      .join('-') || 'likeness';
  return `${words.slice(0, 60)}-${g.seed}.png`;
}
