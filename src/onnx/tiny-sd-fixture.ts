// Test fixture (Node): the tiny-sd reference checkpoint (../shared/data/reference/tiny-sd)
// as a ModelSource, its goldens, and the feeds for each exported graph.
import { readFileSync } from 'node:fs';
import { parseSafetensors, type SafetensorsFile } from '../packs/safetensors.ts';
import { DIFFUSERS_LAYOUT, type ModelSource } from './export-graphs.ts';
import type { OrtArray, OrtExternalFile, OrtIntArray } from './ort.ts';

export const TINY_SD = new URL('../../../shared/data/reference/tiny-sd/', import.meta.url);

export interface GoldenArray {
  shape: number[];
  data: number[];
}

const read = (path: string) => new Uint8Array(readFileSync(new URL(path, TINY_SD)));
const json = (path: string): unknown => JSON.parse(readFileSync(new URL(path, TINY_SD), 'utf8'));

/** Every weights file of the folder, by its path (= external-data location). */
export const tinyFiles = new Map<string, SafetensorsFile>(
  Object.values(DIFFUSERS_LAYOUT).map((c) => [c.weights, parseSafetensors(read(c.weights))]),
);

// The goldens file is typed loosely on purpose: tests name the fields they use.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const goldens: any = json('goldens.json');

export function tinySource(): ModelSource {
  const component = <C>(c: { config: string; weights: string }) => ({
    config: json(c.config) as C,
    weights: { header: tinyFiles.get(c.weights)!, location: c.weights },
  });
  return {
    textEncoder: component(DIFFUSERS_LAYOUT.textEncoder),
    unet: component(DIFFUSERS_LAYOUT.unet),
    vae: component(DIFFUSERS_LAYOUT.vae),
    imageEncoder: component(DIFFUSERS_LAYOUT.imageEncoder),
    lora: { rank: goldens.unet_lora.rank, alpha: goldens.unet_lora.alpha },
  };
}

/** The bytes ORT needs for a graph's external data. */
export const externalFiles = (locations: readonly string[]): OrtExternalFile[] =>
  locations.map((path) => ({ path, data: tinyFiles.get(path)!.bytes }));

export const feed = (a: GoldenArray): OrtArray => ({ data: Float32Array.from(a.data), dims: a.shape });
export const scalarFeed = (v: number): OrtArray => ({ data: Float32Array.of(v), dims: [1] });

/** Token embeddings of `ids` looked up on the CPU, as the pipeline does: (1, N, C). */
export function tokenEmbeddings(ids: readonly number[]): Float32Array {
  const te = tinyFiles.get(DIFFUSERS_LAYOUT.textEncoder.weights)!;
  const table = te.float32('text_model.embeddings.token_embedding.weight');
  const C = te.info('text_model.embeddings.token_embedding.weight').shape[1];
  const out = new Float32Array(ids.length * C);
  ids.forEach((id, i) => out.set(table.subarray(id * C, (id + 1) * C), i * C));
  return out;
}

export const positionIds = (n: number): OrtIntArray => ({
  data: BigInt64Array.from({ length: n }, (_, i) => BigInt(i)),
  dims: [1, n],
});

/** The golden LoRA tensors (PEFT names) as `lora.<module>.A/B` feeds. */
export function loraFeeds(): Record<string, OrtArray> {
  const f = parseSafetensors(read('lora-goldens.safetensors'));
  const out: Record<string, OrtArray> = {};
  for (const name of f.names()) {
    const m = /^unet\.(.+)\.lora_([AB])\.weight$/.exec(name);
    if (!m) throw new Error(`unexpected tensor ${name} in lora-goldens.safetensors`);
    out[`lora.${m[1]}.${m[2]}`] = { data: f.float32(name), dims: f.info(name).shape };
  }
  return out;
}
