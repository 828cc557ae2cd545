// Checkpoints of the encoder's pre-training, one safetensors file each:
//   tensors   encoder.<name>, adam.m.<name>, adam.v.<name>     (F32, exact)
//   metadata  format, step, adam_step, options, config, images, rng, data_order, pack
// Everything a run needs to continue bit for bit: the weights, Adam's moments and step count,
// the position of the counter-based generator (Philox: the seed and the next step's stream)
// and the data order (the current epoch's permutation and the position in it). And the
// trained encoder as `likeness pack --encoder` reads it: config.json + model.safetensors.
import { parseSafetensors, writeSafetensors, type SafetensorsTensorInput } from '../packs/safetensors.ts';
import type { TuningEncoderConfig } from '../models/tuning-encoder/tuning-encoder-config.ts';

export const CHECKPOINT_FORMAT = 'likeness-encoder-checkpoint/1';

export type HostTensor = { shape: number[]; data: Float32Array };

export interface RngState {
  generator: 'philox4x32-10';
  seed: number;
  /** The Philox stream the next optimizer step draws from (block 0). */
  stream: number;
}

export interface DataOrderState {
  /** Samples drawn so far. */
  consumed: number;
  epoch: number;
  /** Position in the current epoch's order. */
  position: number;
  /** The current epoch's permutation of image indices. */
  order: number[];
}

export interface CheckpointState<O> {
  /** Optimizer steps completed. */
  step: number;
  adamStep: number;
  options: O;
  config: TuningEncoderConfig;
  /** Image ids in data-set order. */
  images: string[];
  rng: RngState;
  dataOrder: DataOrderState;
  /** Pack name and manifest hash the run trained against. */
  pack: { name: string; hash: string };
  params: Map<string, HostTensor>;
  adamM: Map<string, HostTensor>;
  adamV: Map<string, HostTensor>;
}

export function writeCheckpoint<O>(s: CheckpointState<O>): Uint8Array {
  const tensors: SafetensorsTensorInput[] = [];
  for (const [prefix, map] of [
    ['encoder', s.params],
    ['adam.m', s.adamM],
    ['adam.v', s.adamV],
  ] as const) {
    for (const [name, t] of map)
      tensors.push({ name: `${prefix}.${name}`, dtype: 'F32', shape: t.shape, data: t.data });
  }
  return writeSafetensors(tensors, {
    format: CHECKPOINT_FORMAT,
    step: String(s.step),
    adam_step: String(s.adamStep),
    options: JSON.stringify(s.options),
    config: JSON.stringify(s.config),
    images: JSON.stringify(s.images),
    rng: JSON.stringify(s.rng),
    data_order: JSON.stringify(s.dataOrder),
    pack: JSON.stringify(s.pack),
  });
}

export function readCheckpoint<O>(bytes: Uint8Array): CheckpointState<O> {
  const f = parseSafetensors(bytes);
  const m = f.metadata;
  if (m.format !== CHECKPOINT_FORMAT)
    throw new Error(
      `not an encoder checkpoint (format ${JSON.stringify(m.format ?? null)}, expected ${CHECKPOINT_FORMAT})`,
    );
  const json = (key: string) => {
    if (typeof m[key] !== 'string') throw new Error(`encoder checkpoint: metadata "${key}" is missing`);
    return JSON.parse(m[key]);
  };
  const int = (key: string) => {
    const n = Number(m[key]);
    if (!Number.isSafeInteger(n) || n < 0)
      throw new Error(`encoder checkpoint: metadata "${key}" = ${JSON.stringify(m[key])} is not a count`);
    return n;
  };
  const maps = {
    encoder: new Map<string, HostTensor>(),
    'adam.m': new Map<string, HostTensor>(),
    'adam.v': new Map<string, HostTensor>(),
  };
  for (const name of f.names()) {
    const info = f.info(name);
    if (info.dtype !== 'F32') throw new Error(`encoder checkpoint: ${name} is ${info.dtype}, expected F32`);
    const prefix = (['adam.m', 'adam.v', 'encoder'] as const).find((p) => name.startsWith(`${p}.`));
    if (!prefix) throw new Error(`encoder checkpoint: unexpected tensor ${name}`);
    maps[prefix].set(name.slice(prefix.length + 1), { shape: [...info.shape], data: f.float32(name) });
  }
  for (const name of maps.encoder.keys()) {
    if (!maps['adam.m'].has(name) || !maps['adam.v'].has(name))
      throw new Error(`encoder checkpoint: no Adam state for ${name}`);
  }
  return {
    step: int('step'),
    adamStep: int('adam_step'),
    options: json('options') as O,
    config: json('config') as TuningEncoderConfig,
    images: json('images') as string[],
    rng: json('rng') as RngState,
    dataOrder: json('data_order') as DataOrderState,
    pack: json('pack') as { name: string; hash: string },
    params: maps.encoder,
    adamM: maps['adam.m'],
    adamV: maps['adam.v'],
  };
}

/** The tuning encoder as a pack takes it: config.json text and model.safetensors bytes. */
export function encoderFiles(
  config: TuningEncoderConfig,
  params: ReadonlyMap<string, HostTensor>,
  note: string,
): { configJson: string; weights: Uint8Array } {
  const c: TuningEncoderConfig = {
    clip_channels: config.clip_channels,
    clip_grid: config.clip_grid,
    unet_channels: config.unet_channels,
    unet_grid: config.unet_grid,
    width: config.width,
    trunk_blocks: config.trunk_blocks,
    groups: config.groups,
    token_dim: config.token_dim,
    lora_rank: config.lora_rank,
    lora_alpha: config.lora_alpha,
    unet_timestep: config.unet_timestep,
  };
  const weights = writeSafetensors(
    [...params].map(([name, t]) => ({ name, dtype: 'F32' as const, shape: t.shape, data: t.data })),
    { format: 'pt', note },
  );
  return { configJson: JSON.stringify(c, null, 2) + '\n', weights };
}
