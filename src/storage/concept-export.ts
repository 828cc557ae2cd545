// A concept exported for other tools, each in the layout that tool loads with no extra
// arguments (the Likeness concept file itself is concept-safetensors.ts):
//
// 'diffusers' — a folder (or zip of it) for `pipe.load_lora_weights(folder)` and
//   `pipe.load_textual_inversion(folder)`:
//     pytorch_lora_weights.safetensors  unet.<module>.lora_A.weight (r, in), .lora_B.weight
//       (out, r), and `__metadata__` {format: "pt", lora_adapter_metadata: the PEFT LoraConfig}
//       — what `save_lora_weights` writes (checked against shared/…/lora-goldens.safetensors).
//       diffusers picks this name in a folder (LORA_WEIGHT_NAME_SAFE) over other files.
//     learned_embeds.safetensors  one key, the placeholder itself, (k, C): what diffusers'
//       textual_inversion.py saves and `load_textual_inversion` reads as {token: vectors}
//       (TEXT_INVERSION_NAME_SAFE). Several vectors become "<token>", "<token>_1", … there.
// 'a1111' — for AUTOMATIC1111 / Forge and ComfyUI, two separate files because a LoRA file
//   with any key outside lora_unet_/lora_te_ is not recognised as kohya by diffusers, and
//   ComfyUI drops such keys ("lora key not loaded"):
//     <name>-lora.safetensors  lora_unet_<module, '.'→'_'>.lora_down.weight (r, in),
//       .lora_up.weight (out, r), .alpha () — kohya-ss sd-scripts naming, scale alpha/r.
//     <trigger>.safetensors  one key "emb_params" (k, C): an embedding file as sd-scripts
//       writes it; A1111 (embeddings/ folder) and ComfyUI (`embedding:<trigger>`) name the
//       embedding after the FILE, so the file is named after the trigger word.
//   Both carry the trigger word in `__metadata__` as `modelspec.trigger_phrase` (the key
//   kohya's model spec and the LoRA managers read).
// Every export has README.txt: how to load it, and that other tools apply the concept at
// blend 1 — the dual path (docs/concepts.md) is Likeness' own.
import type { ConceptData } from '../domain/types.ts';
import { writeSafetensors, type SafetensorsTensorInput } from '../packs/safetensors.ts';
import { ConceptFileError, kohyaModuleName, peftAdapterMetadata } from './concept-safetensors.ts';
import { writeZip, type ZipEntry } from './zip.ts';

export type ExportFormat = 'likeness' | 'diffusers' | 'a1111';

export const DIFFUSERS_LORA_FILE = 'pytorch_lora_weights.safetensors';
export const DIFFUSERS_EMBEDDING_FILE = 'learned_embeds.safetensors';
/** The tensor name A1111 and kohya's sd-scripts use in a .safetensors embedding. */
export const A1111_EMBEDDING_KEY = 'emb_params';
export const README_FILE = 'README.txt';
/** Metadata key for the word to write in prompts (kohya's model spec; LoRA managers read it). */
export const TRIGGER_METADATA_KEY = 'modelspec.trigger_phrase';

export interface ExportBundle {
  format: Exclude<ExportFormat, 'likeness'>;
  /** Folder name for the files (also the zip's stem). */
  folder: string;
  /** The word to write in prompts in the other tool. */
  trigger: string;
  files: ZipEntry[];
}

export interface ExportBundleOptions {
  /** The concept's name in the library: file names are made from it. */
  name: string;
}

/** A name made safe for any file system: letters, digits, '_' and '-'. */
export function safeStem(name: string, fallback = 'concept'): string {
  return (
    name
      .replace(/[^\p{L}\p{N}_-]+/gu, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 60) || fallback
  );
}

/** C, the text encoder's width: the input width of any cross-attention key projection. */
export function conceptTokenDim(c: ConceptData): number {
  const toK = c.lora.find((l) => l.module.endsWith('attn2.to_k'));
  return toK ? toK.aShape[1] : c.embedding.length;
}

/** How many token vectors the placeholder has (1 for what personalize makes). */
export function conceptVectorCount(c: ConceptData): number {
  const dim = conceptTokenDim(c);
  const k = c.embedding.length / dim;
  if (!Number.isInteger(k) || k < 1) {
    throw new ConceptFileError(
      'invalid-concept',
      `Cannot export this concept: its embedding holds ${c.embedding.length} values, not a whole number of ${dim}-value token vectors.`,
      'embedding',
    );
  }
  return k;
}

function checkExportable(c: ConceptData): void {
  if (!c || !(c.embedding instanceof Float32Array) || c.embedding.length === 0)
    throw new ConceptFileError('invalid-concept', 'Cannot export this concept: it has no embedding.', 'embedding');
  if (!Array.isArray(c.lora) || c.lora.length === 0)
    throw new ConceptFileError('invalid-concept', 'Cannot export this concept: it has no LoRA modules.', 'lora');
  if (!(c.rank >= 1) || !(c.alpha > 0))
    throw new ConceptFileError(
      'invalid-concept',
      'Cannot export this concept: its rank or alpha is not usable.',
      'rank',
    );
  conceptVectorCount(c);
}

/** The A1111 / ComfyUI trigger: the placeholder when it is a safe file name, else the concept's name. */
export function a1111Trigger(c: ConceptData, name: string): string {
  return /^[A-Za-z0-9_-]{1,60}$/.test(c.placeholder) ? c.placeholder : safeStem(name);
}

export function exportForDiffusers(c: ConceptData, options: ExportBundleOptions): ExportBundle {
  checkExportable(c);
  const k = conceptVectorCount(c);
  const dim = c.embedding.length / k;
  const lora: SafetensorsTensorInput[] = c.lora.flatMap((l) => [
    { name: `unet.${l.module}.lora_A.weight`, dtype: 'F32' as const, shape: l.aShape, data: l.A },
    { name: `unet.${l.module}.lora_B.weight`, dtype: 'F32' as const, shape: l.bShape, data: l.B },
  ]);
  const loraFile = writeSafetensors(lora, {
    format: 'pt',
    lora_adapter_metadata: peftAdapterMetadata(c),
    [TRIGGER_METADATA_KEY]: c.placeholder,
  });
  const embFile = writeSafetensors([{ name: c.placeholder, dtype: 'F32', shape: [k, dim], data: c.embedding }], {
    format: 'pt',
    [TRIGGER_METADATA_KEY]: c.placeholder,
  });
  const folder = `${safeStem(options.name)}-diffusers`;
  const p = JSON.stringify(c.placeholder);
  const readme = [
    `${options.name} — a Likeness concept for Hugging Face diffusers`,
    '',
    `Trigger word: ${c.placeholder}${k > 1 ? ` (${k} token vectors)` : ''}`,
    '',
    'Load (Stable Diffusion pipeline of the same base model):',
    '',
    `    pipe.load_lora_weights("${folder}")`,
    `    pipe.load_textual_inversion("${folder}")`,
    `    image = pipe("a photo of ${c.placeholder} on the beach").images[0]`,
    '',
    `${DIFFUSERS_LORA_FILE}: the LoRA (PEFT names, rank ${c.rank}, lora_alpha ${c.alpha}).`,
    `${DIFFUSERS_EMBEDDING_FILE}: the word embedding, key ${p}.`,
    '',
    'Other tools apply the concept at blend 1: the LoRA on every step and the learned word',
    "in the prompt. Likeness' blend below 1 (its dual path, which mixes each transformer",
    "block's output with the output for the prompt with the nearest real word and no LoRA)",
    "is Likeness' own: the app shows the blend-1 look next to the export button.",
    'docs/concepts.md of Likeness gives the exact equation and a diffusers snippet for it.',
    '',
    `Seeds: Likeness --rng torch draws the starting noise as torch.randn with`,
    `torch.Generator("cpu").manual_seed(seed), so pass that generator for the same start.`,
    '',
  ].join('\n');
  return {
    format: 'diffusers',
    folder,
    trigger: c.placeholder,
    files: [
      { name: DIFFUSERS_LORA_FILE, bytes: loraFile },
      { name: DIFFUSERS_EMBEDDING_FILE, bytes: embFile },
      { name: README_FILE, bytes: new TextEncoder().encode(readme) },
    ],
  };
}

export function exportForA1111(c: ConceptData, options: ExportBundleOptions): ExportBundle {
  checkExportable(c);
  const k = conceptVectorCount(c);
  const dim = c.embedding.length / k;
  const stem = safeStem(options.name);
  const trigger = a1111Trigger(c, options.name);
  const alpha = Float32Array.of(c.alpha);
  const lora: SafetensorsTensorInput[] = c.lora.flatMap((l) => {
    const m = kohyaModuleName(l.module);
    return [
      { name: `${m}.lora_down.weight`, dtype: 'F32' as const, shape: l.aShape, data: l.A },
      { name: `${m}.lora_up.weight`, dtype: 'F32' as const, shape: l.bShape, data: l.B },
      { name: `${m}.alpha`, dtype: 'F32' as const, shape: [], data: alpha },
    ];
  });
  const common = {
    [TRIGGER_METADATA_KEY]: trigger,
    'modelspec.title': options.name,
    likeness_placeholder: c.placeholder,
  };
  const loraName = `${stem}-lora`;
  const loraFile = writeSafetensors(lora, {
    ...common,
    ss_network_module: 'networks.lora',
    ss_network_dim: String(c.rank),
    ss_network_alpha: String(c.alpha),
  });
  const embFile = writeSafetensors(
    [{ name: A1111_EMBEDDING_KEY, dtype: 'F32', shape: [k, dim], data: c.embedding }],
    common,
  );
  const readme = [
    `${options.name} — a Likeness concept for AUTOMATIC1111 / Forge and ComfyUI`,
    '',
    `Trigger word: ${trigger}${trigger !== c.placeholder ? ` (written ${c.placeholder} in Likeness)` : ''}`,
    '',
    'AUTOMATIC1111 / Forge:',
    `    copy ${loraName}.safetensors to models/Lora/ and ${trigger}.safetensors to embeddings/, then prompt`,
    `    <lora:${loraName}:1> a photo of ${trigger} on the beach`,
    '',
    'ComfyUI:',
    `    copy ${loraName}.safetensors to models/loras/ (LoraLoader, strength 1) and`,
    `    ${trigger}.safetensors to models/embeddings/, then prompt`,
    `    a photo of embedding:${trigger} on the beach`,
    '',
    'diffusers can load these too:',
    `    pipe.load_lora_weights("${loraName}.safetensors")`,
    `    pipe.load_textual_inversion("${trigger}.safetensors", token="${trigger}")`,
    '',
    `The LoRA uses kohya-ss names (lora_unet_…, rank ${c.rank}, alpha ${c.alpha}); the embedding`,
    `file holds one tensor, ${A1111_EMBEDDING_KEY}${k > 1 ? ` (${k} token vectors)` : ''}.`,
    '',
    'Other tools apply the concept at blend 1: the LoRA at strength 1 and the learned word in',
    "the prompt. Likeness' blend below 1 (its dual path) is Likeness' own: the app shows the",
    'blend-1 look next to the export button.',
    '',
  ].join('\n');
  return {
    format: 'a1111',
    folder: `${stem}-a1111`,
    trigger,
    files: [
      { name: `${loraName}.safetensors`, bytes: loraFile },
      { name: `${trigger}.safetensors`, bytes: embFile },
      { name: README_FILE, bytes: new TextEncoder().encode(readme) },
    ],
  };
}

export function exportBundle(
  c: ConceptData,
  format: 'diffusers' | 'a1111',
  options: ExportBundleOptions,
): ExportBundle {
  if (format === 'diffusers') return exportForDiffusers(c, options);
  if (format === 'a1111') return exportForA1111(c, options);
  throw new ConceptFileError(
    'invalid-concept',
    `Unknown export format ${JSON.stringify(format)}: use "diffusers" or "a1111".`,
  );
}

/** The bundle as one zip: its files inside a folder named bundle.folder. */
export function bundleZip(b: ExportBundle, modified?: Date): Uint8Array {
  return writeZip(
    b.files.map((f) => ({ name: `${b.folder}/${f.name}`, bytes: f.bytes })),
    modified,
  );
}
