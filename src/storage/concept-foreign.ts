// Reading the LoRA and textual-inversion files people already have, checked against the loaded
// pack by module names and shapes (the Likeness concept file itself is concept-safetensors.ts).
//
// LoRA layouts (UNet part; one layout per file):
//   'peft'      [unet.]<module>.lora_A.weight (r, in), .lora_B.weight (out, r) — diffusers'
//               save_lora_weights; r / lora_alpha from `lora_adapter_metadata` when present
//               (PEFT's own save_pretrained prefixes base_model.model. instead of unet.)
//   'diffusers' [unet.]<module>.lora.down.weight (r, in), .lora.up.weight (out, r) — diffusers'
//               training scripts before PEFT
//   'attn-procs' [unet.]<attention>.processor.to_{q,k,v,out}_lora.down/up.weight — the older
//               AttnProcsLayers save (to_out means to_out.0)
//   'kohya'     lora_unet_<module, '.'→'_'>.lora_down.weight, .lora_up.weight, .alpha —
//               kohya-ss sd-scripts, A1111, ComfyUI
// with an optional `<module>.alpha` (scale alpha/r; without it alpha = r, scale 1, as diffusers
// and kohya assume). A text-encoder part (text_encoder.*, lora_te_*) cannot be applied —
// Likeness puts LoRA on the UNet only — so it is refused unless the caller asks to leave it out.
// Embedding layouts: diffusers (one tensor named after its token), A1111 / sd-scripts
// (`emb_params`), a converted A1111 .pt (`string_to_param.*`), an embedding bundled in a LoRA
// (`bundle_emb.<name>.string_to_param.*`) and Likeness' own `lora_ti.emb_params`; each (C) or (k, C).
//
// What comes out is exact: every module at the pack's rank R with alpha = R (scale 1), a
// file's rank r ≤ R padded with zero rows/columns (B·A unchanged), its scale alpha/r folded
// into B, and modules the file does not touch as zeros (ΔW = 0). A rank above R, a module
// that is not one of the pack's attention projections, a wrong width: refused, each naming
// what was expected and what was found. The file is never trusted: bounded header and size,
// float dtypes only, offsets checked by the parser, finite values within the f16 range.
import type { ConceptData } from '../domain/types.ts';
import {
  decodeFloat32,
  parseSafetensors,
  SafetensorsError,
  type SafetensorsFile,
  type SafetensorsTensorInfo,
} from '../packs/safetensors.ts';
import { JsonSyntaxError, parseStrictJson, type JsonValue } from '../packs/strict-json.ts';
import {
  CONCEPT_MAX_FILE_BYTES,
  ConceptFileError,
  kohyaModuleName,
  MAX_ABS_VALUE,
  MAX_EMBEDDING_VECTORS,
  type ConceptPackInfo,
} from './concept-safetensors.ts';

/** Header cap for other tools' files: kohya's training metadata (tag counts) can be large. */
export const FOREIGN_MAX_HEADER_BYTES = 8 * 1024 * 1024;

export type ForeignLoraLayout = 'peft' | 'diffusers' | 'attn-procs' | 'kohya';
export type ForeignEmbeddingLayout = 'diffusers' | 'a1111' | 'string_to_param' | 'bundle_emb' | 'likeness';

export const LORA_LAYOUT_LABEL: Record<ForeignLoraLayout, string> = {
  peft: 'lora_A/lora_B (PEFT)',
  diffusers: 'lora.down/lora.up (diffusers training)',
  'attn-procs': 'to_q_lora.down/up (diffusers attention processors)',
  kohya: 'lora_down/lora_up (kohya)',
};

export interface ForeignLora {
  layout: ForeignLoraLayout;
  /** The largest rank in the file. */
  fileRank: number;
  /** How many of the pack's LoRA modules the file sets (the others are zero). */
  matched: number;
  /** At the pack's rank, scale folded into B: use with rank = alpha = pack rank. */
  lora: ConceptData['lora'];
  /** Tensors of a text-encoder part that were left out (only with dropTextEncoder). */
  droppedTextEncoder: number;
  /** UNet tensors outside the attention projections that were left out (only with dropOtherLayers). */
  droppedOtherLayers: number;
}

export interface ForeignEmbedding {
  layout: ForeignEmbeddingLayout;
  /** The token the file names (diffusers' key, A1111's bundle name), if any. */
  token: string | null;
  /** k × C values. */
  vectors: Float32Array;
  count: number;
}

export interface ForeignRead {
  fileName: string;
  lora: ForeignLora | null;
  embedding: ForeignEmbedding | null;
  /** The trigger word the file's metadata names (modelspec.trigger_phrase and the like). */
  trigger: string | null;
}

export interface ForeignReadOptions {
  fileName: string;
  /** Leave out a text-encoder LoRA part instead of refusing the file (the result then differs from other tools'). */
  dropTextEncoder?: boolean;
  /** Leave out LoRA on UNet layers other than the attention projections (feed-forward, proj_in/out, convolutions) instead of refusing. */
  dropOtherLayers?: boolean;
}

type Role =
  | { kind: 'A' | 'B' | 'alpha'; layout: ForeignLoraLayout; module: string }
  | { kind: 'embedding'; layout: ForeignEmbeddingLayout; token: string | null }
  | { kind: 'text-encoder' }
  | { kind: 'ignored' };

const ATTN_PROC = /^(?:unet\.|base_model\.model\.)?(.+)\.processor\.(to_q|to_k|to_v|to_out)_lora\.(down|up)\.weight$/;

/** What one tensor name is, or null when it is nothing this reader knows. */
function classify(name: string, single: boolean): Role | null {
  if (/^(?:text_encoder(?:_2)?\.|lora_te\d?_)/.test(name)) return { kind: 'text-encoder' };
  let m = /^lora_unet_(.+)\.(lora_down\.weight|lora_up\.weight|alpha)$/.exec(name);
  if (m) {
    const kind = m[2] === 'alpha' ? 'alpha' : m[2] === 'lora_down.weight' ? 'A' : 'B';
    return { kind, layout: 'kohya', module: m[1] };
  }
  if ((m = ATTN_PROC.exec(name))) {
    return {
      kind: m[3] === 'down' ? 'A' : 'B',
      layout: 'attn-procs',
      module: `${m[1]}.${m[2] === 'to_out' ? 'to_out.0' : m[2]}`,
    };
  }
  if ((m = /^(?:unet\.|base_model\.model\.)?(.+)\.lora_([AB])\.weight$/.exec(name)))
    return { kind: m[2] as 'A' | 'B', layout: 'peft', module: m[1] };
  if ((m = /^(?:unet\.|base_model\.model\.)?(.+)\.lora\.(down|up)\.weight$/.exec(name)))
    return { kind: m[2] === 'down' ? 'A' : 'B', layout: 'diffusers', module: m[1] };
  if ((m = /^(?:unet\.|base_model\.model\.)?(.+)\.alpha$/.exec(name)))
    return { kind: 'alpha', layout: 'peft', module: m[1] };
  if (name === 'emb_params') return { kind: 'embedding', layout: 'a1111', token: null };
  if (name === 'lora_ti.emb_params') return { kind: 'embedding', layout: 'likeness', token: null };
  if (name === 'string_to_param.*') return { kind: 'embedding', layout: 'string_to_param', token: null };
  if (name === 'string_to_token.*') return { kind: 'ignored' };
  if ((m = /^bundle_emb\.(.+)\.string_to_param\.\*$/.exec(name)))
    return { kind: 'embedding', layout: 'bundle_emb', token: m[1] };
  if (single) return { kind: 'embedding', layout: 'diffusers', token: name };
  return null;
}

const fail = (code: ConstructorParameters<typeof ConceptFileError>[0], message: string, field?: string): never => {
  throw new ConceptFileError(code, message, field);
};

/** Reads a LoRA and/or embedding file of another tool for `pack`, or throws ConceptFileError. */
export function readForeignFile(bytes: Uint8Array, pack: ConceptPackInfo, options: ForeignReadOptions): ForeignRead {
  const { fileName } = options;
  const file = parseForeign(bytes, fileName);
  const q = (s: string) => JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
  if (file.tensors.length === 0)
    fail('not-a-concept', `“${fileName}” holds no tensors: it is not a LoRA or an embedding.`);
  const single = file.tensors.length === 1;
  const roles = file.tensors.map((t) => ({ t, role: classify(t.name, single) }));

  // SDXL embeddings hold two tensors, one per text encoder.
  if (file.tensors.some((t) => t.name === 'clip_g') && file.tensors.some((t) => t.name === 'clip_l')) {
    fail(
      'wrong-pack',
      `“${fileName}” is an SDXL embedding (clip_l + clip_g); ${pack.id} is a Stable Diffusion 1.x/2.x pack with one text encoder.`,
    );
  }
  const unknown = roles.filter((r) => r.role === null).map((r) => r.t.name);
  if (unknown.length > 0) {
    fail(
      'unknown-tensor',
      `“${fileName}” holds ${unknown.length} tensor${unknown.length > 1 ? 's' : ''} that are neither LoRA weights nor an embedding (${unknown.slice(0, 3).map(q).join(', ')}${unknown.length > 3 ? ', …' : ''}). Likeness reads PEFT (lora_A/lora_B), diffusers (lora.down/lora.up), kohya (lora_unet_…) LoRAs and textual-inversion embeddings.`,
      unknown[0],
    );
  }

  const te = roles.filter((r) => r.role!.kind === 'text-encoder');
  if (te.length > 0 && !options.dropTextEncoder) {
    fail(
      'text-encoder',
      `“${fileName}” also trains the text encoder (${te.length} tensors such as ${q(te[0].t.name)}). Likeness applies LoRA to the UNet only, so it cannot reproduce this LoRA as other tools do. Import it with the text-encoder part left out (CLI --drop-text-encoder, or the library's “only the parts Likeness can apply”) if an approximation is acceptable.`,
      te[0].t.name,
    );
  }

  const loraRoles = roles.filter((r) => r.role!.kind === 'A' || r.role!.kind === 'B' || r.role!.kind === 'alpha') as {
    t: SafetensorsTensorInfo;
    role: Extract<Role, { kind: 'A' | 'B' | 'alpha' }>;
  }[];
  // A bare "<module>.alpha" (classified 'peft') goes with whichever layout the weights use.
  const layouts = new Set(
    loraRoles.filter((r) => r.role.kind !== 'alpha' || r.role.layout === 'kohya').map((r) => r.role.layout),
  );
  if (layouts.size > 1) {
    fail(
      'mixed-naming',
      `“${fileName}” mixes LoRA namings (${[...layouts].map((l) => LORA_LAYOUT_LABEL[l]).join(' and ')}), so it is not clear which to use. Save it again with one naming.`,
    );
  }
  const embRoles = roles.filter((r) => r.role!.kind === 'embedding');
  if (embRoles.length > 1) {
    fail(
      'mixed-naming',
      `“${fileName}” holds ${embRoles.length} embeddings (${embRoles.map((r) => q(r.t.name)).join(', ')}); import one at a time.`,
    );
  }

  const lora =
    loraRoles.length > 0 ? readLora(file, pack, [...layouts][0] ?? 'peft', loraRoles, options, te.length) : null;
  const embedding =
    embRoles.length === 1
      ? readEmbedding(file, pack, embRoles[0].t, embRoles[0].role as Extract<Role, { kind: 'embedding' }>, fileName)
      : null;
  if (!lora && !embedding)
    fail('not-a-concept', `“${fileName}” has no UNet LoRA weights and no embedding Likeness can use.`);
  return { fileName, lora, embedding, trigger: readTrigger(file.metadata) };
}

function parseForeign(bytes: Uint8Array, fileName: string): SafetensorsFile {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('readForeignFile: bytes must be a Uint8Array');
  if (bytes.length >= 2 && bytes[0] === 0x50 && bytes[1] === 0x4b) {
    fail(
      'not-safetensors',
      `“${fileName}” is a zip or PyTorch .pt/.bin file (a Python pickle, which can run code when opened): Likeness reads only .safetensors. Convert it to .safetensors first, or unzip an export and import its files.`,
    );
  }
  if (bytes.length > CONCEPT_MAX_FILE_BYTES) {
    fail(
      'too-large',
      `“${fileName}” is ${bytes.length} bytes, more than any LoRA or embedding Likeness imports (${CONCEPT_MAX_FILE_BYTES}); it is probably a whole model.`,
    );
  }
  try {
    return parseSafetensors(bytes, { maxHeaderBytes: FOREIGN_MAX_HEADER_BYTES });
  } catch (e) {
    if (!(e instanceof SafetensorsError)) throw e;
    const code =
      e.code === 'header-too-large'
        ? 'header-too-large'
        : /short|beyond|bounds|need-more/.test(e.code)
          ? 'truncated'
          : 'not-safetensors';
    throw new ConceptFileError(
      code,
      `“${fileName}” is not a readable .safetensors file (${e.message.replace(/^safetensors: /, '')}).`,
      e.tensor,
      { cause: e },
    );
  }
}

// ------------------------------------------------------------------------------------ LoRA

/** The PEFT LoraConfig in `lora_adapter_metadata`, reduced to what sets the scale. */
function peftScaleConfig(
  meta: Readonly<Record<string, string>>,
  fileName: string,
): { r: number; alpha: number; rslora: boolean } | null {
  const text = meta.lora_adapter_metadata;
  if (text === undefined) return null;
  let cfg: JsonValue;
  try {
    cfg = parseStrictJson(text, { maxDepth: 8 });
  } catch (e) {
    if (e instanceof JsonSyntaxError)
      return fail(
        'metadata',
        `“${fileName}”: its lora_adapter_metadata is not valid JSON (${e.message}).`,
        'lora_adapter_metadata',
      );
    throw e;
  }
  if (!(cfg instanceof Map))
    return fail('metadata', `“${fileName}”: its lora_adapter_metadata is not a JSON object.`, 'lora_adapter_metadata');
  const get = (k: string) => cfg.get(`unet.${k}`) ?? cfg.get(k);
  const r = get('r');
  const alpha = get('lora_alpha');
  for (const k of ['rank_pattern', 'alpha_pattern']) {
    const p = get(k);
    if (p instanceof Map && p.size > 0)
      fail(
        'metadata',
        `“${fileName}” sets per-module ${k}, which Likeness does not read; save it with one rank and alpha.`,
        'lora_adapter_metadata',
      );
  }
  if (get('use_dora') === true)
    fail(
      'metadata',
      `“${fileName}” is a DoRA adapter (use_dora), not a plain LoRA; Likeness cannot apply it.`,
      'lora_adapter_metadata',
    );
  if (typeof r !== 'number' || !(r >= 1) || typeof alpha !== 'number' || !(alpha > 0)) {
    return fail(
      'metadata',
      `“${fileName}”: its lora_adapter_metadata has no usable r and lora_alpha.`,
      'lora_adapter_metadata',
    );
  }
  return { r, alpha, rslora: get('use_rslora') === true };
}

function readLora(
  file: SafetensorsFile,
  pack: ConceptPackInfo,
  layout: ForeignLoraLayout,
  roles: { t: SafetensorsTensorInfo; role: Extract<Role, { kind: 'A' | 'B' | 'alpha' }> }[],
  options: ForeignReadOptions,
  teCount: number,
): ForeignLora {
  const { fileName } = options;
  const R = pack.rank;
  const label = LORA_LAYOUT_LABEL[layout];
  const index = new Map<string, number>();
  pack.targets.forEach((t, i) =>
    index.set(layout === 'kohya' ? kohyaModuleName(t.module).slice('lora_unet_'.length) : t.module, i),
  );
  const A: (Float32Array | null)[] = pack.targets.map(() => null);
  const B: (Float32Array | null)[] = pack.targets.map(() => null);
  const ranks: number[] = pack.targets.map(() => 0);
  const alphas: (number | null)[] = pack.targets.map(() => null);
  const outside: string[] = [];
  for (const { t, role } of roles) {
    const i = index.get(role.module);
    if (i === undefined) {
      outside.push(t.name);
      continue;
    }
    checkFloat(t, fileName);
    const target = pack.targets[i];
    if (role.kind === 'alpha') {
      if (t.numel !== 1)
        fail(
          'shape',
          `${label} naming: ${t.name}: expected one number (alpha), found [${t.shape.join(' × ')}].`,
          t.name,
        );
      const a = values(file, t, fileName)[0];
      if (!(a > 0)) fail('metadata', `${label} naming: ${t.name} is ${a}; a LoRA alpha must be above 0.`, t.name);
      alphas[i] = a;
      continue;
    }
    const [d0, d1] = t.shape;
    const isA = role.kind === 'A';
    const r = isA ? d0 : d1;
    const dimOk = t.shape.length === 2 && (isA ? d1 === target.in : d0 === target.out);
    if (!dimOk || !(r >= 1) || r > R) {
      const want = isA ? `rank ${R} × ${target.in}` : `${target.out} × rank ${R}`;
      fail(
        'shape',
        `${label} naming: ${t.name}: expected ${want}${R > 1 ? ` (or a smaller rank)` : ''}, found ${t.shape.join(' × ') || 'a scalar'}. ${
          dimOk
            ? `Its rank ${r} is above the ${R} this pack's concepts have.`
            : `It was made for a different model than ${pack.id}.`
        }`,
        t.name,
      );
    }
    if (ranks[i] && ranks[i] !== r)
      fail(
        'shape',
        `${label} naming: ${target.module} has down rank and up rank that differ (${ranks[i]} and ${r}).`,
        t.name,
      );
    ranks[i] = r;
    (isA ? A : B)[i] = values(file, t, fileName);
  }
  if (outside.length > 0 && !options.dropOtherLayers) {
    fail(
      'unknown-tensor',
      `“${fileName}” (${label} naming) changes ${outside.length} tensor${outside.length > 1 ? 's' : ''} outside the attention projections (to_q, to_k, to_v, to_out.0) of ${pack.id}, where Likeness applies LoRA, e.g. ${JSON.stringify(outside[0])}. It targets other layers (feed-forward, convolutions) or a different model, so it cannot be applied as other tools do. Import only its attention part (CLI --attention-only, or the library's “only the parts Likeness can apply”) if an approximation is acceptable.`,
      outside[0],
    );
  }
  const peft = layout === 'peft' ? peftScaleConfig(file.metadata, fileName) : null;
  let matched = 0;
  let fileRank = 0;
  const lora = pack.targets.map((t, i) => {
    const a = A[i];
    const b = B[i];
    if (!a !== !b) {
      fail(
        'missing-tensor',
        `${label} naming: ${t.module} has only its ${a ? 'down (A)' : 'up (B)'} matrix; the file is incomplete.`,
        t.module,
      );
    }
    const outA = new Float32Array(R * t.in);
    const outB = new Float32Array(t.out * R);
    if (a && b) {
      matched++;
      const r = ranks[i];
      fileRank = Math.max(fileRank, r);
      if (peft && peft.r !== r)
        fail(
          'inconsistent',
          `“${fileName}”: its PEFT config says r = ${peft.r} but ${t.module} has rank ${r}.`,
          t.module,
        );
      const alpha = alphas[i] ?? peft?.alpha ?? r;
      const scale = peft?.rslora ? alpha / Math.sqrt(r) : alpha / r;
      outA.set(a); // rows 0 … r−1 of (R, in)
      for (let o = 0; o < t.out; o++) for (let j = 0; j < r; j++) outB[o * R + j] = b[o * r + j] * scale;
    }
    return {
      module: t.module,
      A: outA,
      aShape: [R, t.in] as [number, number],
      B: outB,
      bShape: [t.out, R] as [number, number],
    };
  });
  if (matched === 0) fail('not-a-concept', `“${fileName}” has no LoRA weights for ${pack.id}.`);
  return { layout, fileRank, matched, lora, droppedTextEncoder: teCount, droppedOtherLayers: outside.length };
}

// ------------------------------------------------------------------------------- embedding

const FAMILY: Record<number, string> = { 768: 'Stable Diffusion 1.x', 1024: 'Stable Diffusion 2.x', 1280: 'SDXL' };

function readEmbedding(
  file: SafetensorsFile,
  pack: ConceptPackInfo,
  t: SafetensorsTensorInfo,
  role: Extract<Role, { kind: 'embedding' }>,
  fileName: string,
): ForeignEmbedding {
  checkFloat(t, fileName);
  const C = pack.tokenDim;
  const k = t.shape.length === 1 ? 1 : t.shape[0];
  const width = t.shape.at(-1);
  if (t.shape.length < 1 || t.shape.length > 2 || width !== C || !(k >= 1) || k > MAX_EMBEDDING_VECTORS) {
    const family = width !== undefined && FAMILY[width] ? ` (${width} values per vector is ${FAMILY[width]})` : '';
    fail(
      'shape',
      `The embedding ${JSON.stringify(t.name)} in “${fileName}”: expected 1 to ${MAX_EMBEDDING_VECTORS} vectors × ${C} (the token width of ${pack.id}), found ${t.shape.join(' × ')}${family}. It was made for a different model.`,
      t.name,
    );
  }
  return { layout: role.layout, token: role.token, vectors: values(file, t, fileName), count: k };
}

/** The first trigger word a LoRA manager would show (comma-separated phrases: the first). */
function readTrigger(meta: Readonly<Record<string, string>>): string | null {
  for (const key of [
    'modelspec.trigger_phrase',
    'ss_trigger_words',
    'trigger_word',
    'trigger_words',
    'likeness_placeholder',
    'placeholder',
  ]) {
    const v = meta[key];
    if (typeof v !== 'string') continue;
    let first = v;
    if (v.startsWith('[')) {
      try {
        const list = parseStrictJson(v, { maxDepth: 1 });
        first = Array.isArray(list) && typeof list[0] === 'string' ? list[0] : '';
      } catch {
        first = '';
      }
    }
    const w = first.split(',')[0].trim();
    // eslint-disable-next-line no-control-regex -- a trigger with control characters is not one
    if (w.length > 0 && w.length <= 64 && !/[\u0000-\u001f\u007f]/.test(w)) return w;
  }
  return null;
}

// --------------------------------------------------------------------------------- values

function checkFloat(t: SafetensorsTensorInfo, fileName: string): void {
  if (t.dtype !== 'F32' && t.dtype !== 'F16' && t.dtype !== 'BF16') {
    fail(
      'dtype',
      `“${fileName}”: tensor ${JSON.stringify(t.name)} is ${t.dtype}; LoRA and embedding tensors must be F32, F16 or BF16.`,
      t.name,
    );
  }
}

function values(file: SafetensorsFile, t: SafetensorsTensorInfo, fileName: string): Float32Array {
  const v = decodeFloat32(t.dtype, file.rawBytes(t.name), t.name);
  for (let i = 0; i < v.length; i++) {
    if (!(Math.abs(v[i]) <= MAX_ABS_VALUE)) {
      fail(
        'non-finite',
        `“${fileName}”: tensor ${JSON.stringify(t.name)} holds ${Number.isNaN(v[i]) ? 'NaN' : v[i]} at element ${i}; the file is broken.`,
        t.name,
      );
    }
  }
  return v;
}
