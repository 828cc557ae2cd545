import { describe, expect, it } from 'vitest';
import { DeviceLostError, GpuValidationError } from '../engine/engine.ts';
import { WebGpuUnavailableError } from '../engine/gpu.ts';
import { ManifestError } from '../packs/manifest.ts';
import { PackLoadError } from '../packs/pack-loader.ts';
import { ImageError } from '../image/types.ts';
import { NumericalError } from '../pipeline/personalize.ts';
import type { ConceptData } from '../domain/types.ts';
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
      [new RangeError('Array buffer allocation failed'), 'out-of-memory'],
      [new Error('the device was lost'), 'device-lost'],
      [Object.assign(new Error('bad steps'), { name: 'WorkerError:bad-input' }), 'bad-input'],
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

  it('keeps the fallback concept of a numerical failure', () => {
    const w = toWireError(new NumericalError('tuning diverged at step 2', concept));
    expect(w).toEqual({ kind: 'numerical', message: 'tuning diverged at step 2', fallback: concept });
    const back = toWorkerError(structuredClone(w));
    expect(back.kind).toBe('numerical');
    expect(back.fallback?.embedding).toEqual(concept.embedding);
  });

  it('reads back what comlink delivers: the plain object, or an Error rebuilt from {name, message}', () => {
    expect(toWorkerError({ kind: 'pack', message: 'm' })).toEqual({ kind: 'pack', message: 'm' });
    expect(toWorkerError({ kind: 'nonsense', name: 'ImageError', message: 'm' })).toEqual({
      kind: 'bad-input',
      message: 'm',
    });
    expect(toWorkerError(Object.assign(new Error('lost'), { name: 'DeviceLostError' }))).toEqual({
      kind: 'device-lost',
      message: 'lost',
    });
    // A fallback that is not a concept is dropped, not trusted.
    expect(toWorkerError({ kind: 'numerical', message: 'm', fallback: { embedding: [1] } })).toEqual({
      kind: 'numerical',
      message: 'm',
    });
  });
});
