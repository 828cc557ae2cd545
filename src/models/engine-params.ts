// Parameters for the engine backend straight from a safetensors file: each tensor is
// uploaded the first time a model asks for it, after its shape is checked against the
// config's, and stays on the GPU (kept, not scoped) until dispose().
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import type { SafetensorsFile } from '../packs/safetensors.ts';
import { ParamShapeError, type ParamSource } from './params.ts';

export class SafetensorsParams implements ParamSource<Tensor> {
  private readonly uploaded = new Map<string, Tensor>();

  constructor(
    private readonly engine: Engine,
    private readonly files: readonly SafetensorsFile[],
    /** Maps a model's parameter name to the file's name (e.g. adds a prefix). */
    private readonly rename: (name: string) => string = (n) => n,
  ) {}

  private find(name: string) {
    const stored = this.rename(name);
    for (const f of this.files) {
      const info = f.byName.get(stored);
      if (info) return { f, info, stored };
    }
    return null;
  }

  has(name: string): boolean {
    return this.find(name) !== null;
  }

  get(name: string, shape: readonly number[]): Tensor {
    const cached = this.uploaded.get(name);
    if (cached) return cached;
    const hit = this.find(name);
    if (!hit) throw new ParamShapeError(`missing parameter '${this.rename(name)}' (expected shape [${shape.join(', ')}])`);
    const { f, info, stored } = hit;
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      throw new ParamShapeError(`parameter '${stored}' has shape [${info.shape.join(', ')}], the config implies [${shape.join(', ')}]`);
    }
    const t = this.engine.keep(this.engine.tensor(f.float32(stored), shape, { name: stored }));
    this.uploaded.set(name, t);
    return t;
  }

  /** Replace (or add) a parameter, e.g. a trainable copy. The previous tensor is disposed. */
  set(name: string, t: Tensor): void {
    this.uploaded.get(name)?.dispose();
    this.uploaded.set(name, t);
  }

  get residentBytes(): number {
    let n = 0;
    for (const t of this.uploaded.values()) n += t.byteLength;
    return n;
  }

  dispose(): void {
    for (const t of this.uploaded.values()) t.dispose();
    this.uploaded.clear();
  }
}
