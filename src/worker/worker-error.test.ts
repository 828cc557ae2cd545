import { describe, expect, it } from 'vitest';
import { UsageError } from '../cli/args.ts';
import { LikenessError, PackError } from '../domain/errors.ts';
import type { ConceptData } from '../domain/types.ts';
import { BindingLimitError, DeviceLostError, GpuOutOfMemoryError, GpuValidationError } from '../engine/engine.ts';
import { WebGpuUnavailableError } from '../engine/gpu.ts';
import { PngFormatError } from '../image/png-text.ts';
import { ImageError } from '../image/types.ts';
import { ParamShapeError } from '../models/params.ts';
import { ManifestError } from '../packs/manifest.ts';
import { PackFileError } from '../packs/pack-file-error.ts';
import { PackLoadError } from '../packs/pack-loader.ts';
import { SafetensorsError } from '../packs/safetensors.ts';
import { JsonSyntaxError } from '../packs/strict-json.ts';
import { PackWeightsError } from '../packs/pack-weights-check.ts';
import { NumericalError } from '../pipeline/personalize.ts';
import { ConceptFileError } from '../storage/concept-safetensors.ts';
import { storageError } from '../storage/storage-error.ts';
import { PackBuildError } from './pack-build.ts';
import { NoPackError } from '../session/runtime-host.ts';
import { toWireError, toWorkerError } from './worker-error.ts';

const concept = {
  placeholder: 'S*',
  embedding: new Float32Array([1, 2]),
  nearestWords: ['cat'],
  hardTokenId: 1,
  rank: 1,
  alpha: 1,
  blend: 0.25,
  lora: [],
  lossCurve: [],
  packId: 'tiny',
  packHash: 'ab',
} satisfies ConceptData;

describe('errors across the worker boundary', () => {
  it('gives each error class its kind and keeps the message', () => {
    const cases: [unknown, string][] = [
      [new DOMException('Cancelled.', 'AbortError'), 'cancelled'],
      [new ImageError('corrupt', 'The PNG file could not be decoded.'), 'bad-input'],
      [new DeviceLostError('destroyed: gone'), 'device-lost'],
      [new PackLoadError('sha256-mismatch', 'unet.safetensors: sha256 mismatch'), 'pack'],
      [new ManifestError([{ path: 'name', message: 'missing' }]), 'pack'],
      [new GpuValidationError('GPU error: bad binding'), 'internal'],
      [new WebGpuUnavailableError('WebGPU is not available in this browser.'), 'internal'],
      [new GpuOutOfMemoryError('GPU out of memory: matmul'), 'out-of-memory'],
      [new BindingLimitError('matmul: binding 0 is 300 MB'), 'internal'],
      [new DOMException('The quota has been exceeded.', 'QuotaExceededError'), 'out-of-memory'],
      [new DOMException('Timed out.', 'TimeoutError'), 'cancelled'],
      [new RangeError('Array buffer allocation failed'), 'out-of-memory'],
      [new NoPackError(), 'bad-input'],
      [new PackBuildError('not a Stable Diffusion 1.x model'), 'pack'],
      [new PackFileError('tokenizer/merges.txt', 'damaged'), 'pack'],
      [new PackWeightsError(['unet: missing conv_in.weight']), 'pack'],
      [new JsonSyntaxError('unexpected end', 3), 'pack'],
      [new SafetensorsError('out-of-bounds', 'past the end'), 'pack'],
      [new ParamShapeError('conv_in.weight: shape [1] ≠ [320, 4, 3, 3]'), 'pack'],
      [new PngFormatError('not a PNG (bad signature)'), 'bad-input'],
      [new ConceptFileError('not-a-concept', 'no embedding'), 'bad-input'],
      [new UsageError('--steps needs a number'), 'bad-input'],
      [storageError('quota', 'full'), 'out-of-memory'],
      [storageError('bad-file', 'refused'), 'bad-input'],
      [new TypeError('x is undefined'), 'internal'],
      ['a string', 'internal'],
    ];
    for (const [err, kind] of cases) {
      const w = toWireError(err);
      expect(w.kind, String(err)).toBe(kind);
      expect(w.message).toBe(
        err instanceof Error || err instanceof DOMException ? (err as Error).message : String(err),
      );
      // What the worker throws survives structured cloning unchanged.
      expect(structuredClone(w)).toEqual(w);
    }
  });

  it('classifies by kind alone: a new subclass by its kind, a plain Error as internal whatever it says', () => {
    class FreshKindError extends LikenessError {
      readonly kind = 'numerical';
    }
    class FreshPackError extends PackError {
      override name = 'SomethingNobodyListed';
    }
    expect(toWireError(new FreshKindError('loss is NaN')).kind).toBe('numerical');
    expect(toWireError(new FreshPackError('bad pack')).kind).toBe('pack');
    // Names and messages that once picked a kind no longer do.
    for (const err of [
      new Error('the device was lost'),
      new Error('out of memory'),
      Object.assign(new Error('lost'), { name: 'DeviceLostError' }),
      Object.assign(new Error('bad steps'), { name: 'WorkerError:bad-input' }),
      { name: 'ImageError', message: 'm' },
    ]) {
      expect(toWireError(err).kind, String(err)).toBe('internal');
    }
  });

  it('keeps the fallback concept of a numerical failure', () => {
    const w = toWireError(new NumericalError('tuning diverged at step 2', concept));
    expect(w).toEqual({ kind: 'numerical', message: 'tuning diverged at step 2', fallback: concept });
    const back = toWorkerError(structuredClone(w));
    expect(back.kind).toBe('numerical');
    expect(back.fallback?.embedding).toEqual(concept.embedding);
  });

  it('reads back what comlink delivers: the plain object the worker threw', () => {
    expect(toWorkerError({ kind: 'pack', message: 'm' })).toEqual({ kind: 'pack', message: 'm' });
    expect(toWorkerError({ kind: 'nonsense', message: 'm' })).toEqual({ kind: 'internal', message: 'm' });
    expect(toWorkerError(structuredClone(toWireError(new DeviceLostError('destroyed: gone'))))).toEqual({
      kind: 'device-lost',
      message: new DeviceLostError('destroyed: gone').message,
    });
    // A fallback that is not a concept is dropped, not trusted.
    expect(toWorkerError({ kind: 'numerical', message: 'm', fallback: { embedding: [1] } })).toEqual({
      kind: 'numerical',
      message: 'm',
    });
  });
});
