import { describe, expect, it } from 'vitest';
import { a1111Parameters, generationTextEntries, imageFileName, type GenerationRecord } from './generation-metadata.ts';

const g: GenerationRecord = {
  prompt: 'a watercolor of S* in Paris',
  negativePrompt: 'blurry, low quality',
  steps: 20,
  guidance: 7.5,
  sampler: 'dpmpp-2m',
  blend: 0.25,
  batch: 2,
  seed: 1234,
  runtime: 'onnx',
  width: 512,
  height: 512,
  packId: 'tiny-sd',
  concept: { name: 'Grey mug', placeholder: 'S*', id: 'c1' },
  createdAt: 0,
};

describe('generation metadata', () => {
  it('writes A1111-style parameters', () => {
    expect(a1111Parameters(g)).toBe(
      'a watercolor of S* in Paris\nNegative prompt: blurry, low quality\n' +
        'Steps: 20, Sampler: DPM++ 2M, CFG scale: 7.5, Seed: 1234, Size: 512x512, Model: tiny-sd, Concept: Grey mug (S*), Blend: 0.25, Runtime: onnx',
    );
    expect(a1111Parameters({ ...g, negativePrompt: '', concept: null })).toBe(
      'a watercolor of S* in Paris\nSteps: 20, Sampler: DPM++ 2M, CFG scale: 7.5, Seed: 1234, Size: 512x512, Model: tiny-sd, Runtime: onnx',
    );
  });
  it('keeps the exact settings as JSON', () => {
    const entries = generationTextEntries(g);
    expect(entries.map((e) => e.keyword)).toEqual(['parameters', 'Software', 'likeness']);
    expect(JSON.parse(entries[2].text)).toEqual(g);
  });
  it('names downloads', () => {
    expect(imageFileName(g)).toBe('a-watercolor-of-S-in-Paris-1234.png');
    expect(imageFileName({ prompt: '!!!', seed: 1 })).toBe('likeness-1.png');
  });
});
