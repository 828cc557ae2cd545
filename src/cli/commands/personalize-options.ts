// `likeness personalize`'s options, declared once: parsing (../args.ts) and --help (../main.ts)
// both read them. Defaults the session core resolves (pack manifest, then DEFAULTS) are named
// in the help only, so they are resolved in one place.
import { DEFAULTS } from '../../domain/defaults.ts';
import { MAX_PIXELS, NODE_JPEG_MAX_PIXELS } from '../../domain/limits.ts';
import { EXPORT_FORMATS } from '../../session/concept-files.ts';
import { WEIGHTS_CHOICES } from '../args.ts';

const P = DEFAULTS.personalize;
const W = DEFAULTS.classWord;

export const PERSONALIZE_OPTIONS = {
  image: {
    type: 'string',
    value: '<photo>',
    required: true,
    help: `The photo (PNG, JPEG, WebP; up to ${MAX_PIXELS / 1e6} MP, JPEGs up to ${NODE_JPEG_MAX_PIXELS / 1e6} MP here; docs/limits.md).`,
  },
  out: {
    type: 'string',
    value: '<file|dir>',
    required: true,
    help: 'Where the concept goes: a .safetensors file, or for --format diffusers/a1111 a folder or a .zip.',
  },
  pack: {
    type: 'string',
    value: '<dir>',
    help: 'Model pack.',
    defaultHelp: 'the bundled tiny pack, built on first use',
  },
  token: {
    type: 'string',
    value: '<word>',
    help: 'Placeholder written in prompts: one made-up word, not a word the model knows (docs/limits.md).',
    defaultHelp: `the pack's, else ${P.placeholder}`,
  },
  'class-word': {
    type: 'string',
    value: '<word>',
    help: 'Required for a pack without a tuning encoder: one word (one token) for what the photo shows (e.g. dog); v* starts from its embedding, the LoRA from B = 0. Ignored when the pack has an encoder.',
  },
  steps: {
    type: 'integer',
    value: '<n>',
    min: 1,
    help: 'Tuning steps.',
    defaultHelp: `the pack's (${P.steps}) from the encoder; ${W.steps} from a class word`,
  },
  crop: { type: 'string', value: '<x,y,size>', help: 'Square crop in photo pixels.', defaultHelp: 'the centre square' },
  seed: { type: 'integer', value: '<n>', min: 0, help: 'Seed of the tuning noise.', defaultHelp: String(P.seed) },
  lr: {
    type: 'number',
    value: '<x>',
    help: 'Adam learning rate (docs/pipeline.md).',
    defaultHelp: `the pack's (${P.learningRate}) from the encoder; ${W.learningRate} from a class word`,
  },
  batch: { type: 'integer', value: '<n>', min: 1, help: 'Noised views per tuning step.', defaultHelp: String(P.batch) },
  checkpointing: {
    type: 'flag',
    help: 'Recompute UNet blocks in backward (less GPU memory; on by default for packs of 256 px and up).',
  },
  kohya: { type: 'flag', help: 'Write LoRA names for kohya/A1111 tools instead of diffusers/PEFT.' },
  weights: {
    type: 'string',
    value: '<mode>',
    choices: WEIGHTS_CHOICES,
    help: 'GPU dtype of linear/conv weights: stored (fp16 packs stay fp16), f16 (fp32 packs rounded to fp16 too) or f32.',
    defaultHelp: 'stored',
  },
  format: {
    type: 'string',
    value: '<name>',
    choices: EXPORT_FORMATS,
    default: 'likeness',
    help: 'likeness (one concept file), diffusers (--out is a folder or .zip with pytorch_lora_weights.safetensors + learned_embeds.safetensors for load_lora_weights / load_textual_inversion), or a1111 (a kohya LoRA + an emb_params embedding for A1111 / ComfyUI). Other tools apply a concept at blend 1; see docs/concepts.md.',
  },
} as const;
