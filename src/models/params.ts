// Named parameters with diffusers / transformers state-dict names. A model asks for each
// parameter with the shape its config implies; the source checks it, so a checkpoint with
// a wrong shape is refused by name instead of failing deep inside a kernel.
import { PackError } from '../domain/errors.ts';

export interface ParamSource<T> {
  /** The tensor stored under `name`, which must have `shape`. */
  get(name: string, shape: readonly number[]): T;
  /** Whether `name` exists (optional modules such as conv_shortcut, LoRA). */
  has(name: string): boolean;
}

export class ParamShapeError extends PackError {
  constructor(message: string) {
    super(message);
    this.name = 'ParamShapeError';
  }
}

/** A view of `source` under a name prefix: `scoped(p, 'down_blocks.0').get('resnets.0…')`. */
export class Params<T> {
  constructor(
    private readonly source: ParamSource<T>,
    readonly prefix = '',
  ) {}

  private full(name: string): string {
    return this.prefix ? `${this.prefix}.${name}` : name;
  }

  get(name: string, shape: readonly number[]): T {
    return this.source.get(this.full(name), shape);
  }

  has(name: string): boolean {
    return this.source.has(this.full(name));
  }

  sub(name: string | number): Params<T> {
    return new Params(this.source, this.full(String(name)));
  }
}

/** A ParamSource over a Map, checking shapes. */
export class MapParamSource<T> implements ParamSource<T> {
  constructor(
    private readonly map: ReadonlyMap<string, T>,
    private readonly shapeOf: (t: T) => readonly number[],
  ) {}

  get(name: string, shape: readonly number[]): T {
    const t = this.map.get(name);
    if (t === undefined) throw new ParamShapeError(`missing parameter '${name}' (expected shape [${shape.join(', ')}])`);
    const actual = this.shapeOf(t);
    if (actual.length !== shape.length || actual.some((d, i) => d !== shape[i])) {
      throw new ParamShapeError(`parameter '${name}' has shape [${actual.join(', ')}], the config implies [${shape.join(', ')}]`);
    }
    return t;
  }

  has(name: string): boolean {
    return this.map.has(name);
  }
}
