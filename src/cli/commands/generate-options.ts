// \`likeness generate\`'s options, declared once: parsing (../args.ts) and --help (../main.ts)
// both read them. Defaults the session core resolves (concept, pack manifest, then DEFAULTS)
// are named in the help only, so they are resolved in one place.
import { DEFAULTS } from '../../domain/defaults.ts';
import { SAMPLERS } from '../../domain/samplers.ts';
import { WEIGHTS_CHOICES } from '../args.ts';

const G = DEFAULTS.generate;

export const GENERATE_OPTIONS = {
  prompt: {
    type: 'string',
    value: '"<text>"',
    required: true,
    help: "The prompt; write a concept's placeholder in it.",
  },
  out: { type: 'string', value: '<folder>', required: true, help: 'Where the PNGs go.' },
  concept: {
    type: 'string',
    value: '<file>',
    help: "A concept from `personalize`. Other tools' files work too (see --lora, --embedding).",
  },
  lora: { type: 'string', value: '<file>', help: 'A LoRA from diffusers, PEFT or kohya (.safetensors, UNet part).' },
  embedding: {
    type: 'string',
    value: '<file>',
    help: 'A textual-inversion embedding (diffusers learned_embeds, A1111).',
  },
  trigger: {
    type: 'string',
    value: '<word>',
    help: "Placeholder for an imported LoRA/embedding (default: the embedding's token, the file's trigger word, else the file name). Blend default 1.",
  },
  'drop-text-encoder': { type: 'flag', help: "Import a LoRA's UNet part when it also trains the text encoder." },
  'attention-only': {
    type: 'flag',
    help: "Import only a LoRA's attention projections when it also changes other UNet layers (feed-forward, proj_in/out). Both are approximations.",
  },
  negative: { type: 'string', value: '"<text>"', help: 'Negative prompt.', defaultHelp: "the pack's, usually empty" },
  steps: { type: 'integer', value: '<n>', help: 'Sampling steps.', defaultHelp: `the pack's, ${G.steps}` },
  guidance: {
    type: 'number',
    value: '<x>',
    help: 'Classifier-free guidance scale.',
    defaultHelp: `the pack's, ${G.guidance}`,
  },
  sampler: {
    type: 'string',
    value: '<name>',
    choices: SAMPLERS,
    help: `${SAMPLERS.join(' | ')}.`,
    defaultHelp: `the pack's, ${G.sampler}`,
  },
  blend: {
    type: 'number',
    value: '<α>',
    help: 'Dual-path blend α in [0, 1].',
    defaultHelp: `the concept's, else the pack's, ${G.generateBlend}`,
  },
  seed: { type: 'integer', value: '<n>', help: 'Seed; image i of a batch uses seed + i.', defaultHelp: String(G.seed) },
  batch: { type: 'integer', value: '<n>', help: 'Images to make.', defaultHelp: `the pack's, ${G.batch}` },
  rng: {
    type: 'string',
    value: '<name>',
    choices: ['philox', 'torch'],
    help: "How the seed becomes the starting noise x_T: philox (Likeness' own) or torch, the values torch.randn gives with torch.Generator('cpu').manual_seed(seed), so diffusers with that generator (batch 1, seed + i per image) starts from the same x_T.",
    defaultHelp: G.rng,
  },
  pack: { type: 'string', value: '<dir>', help: 'Model pack.', defaultHelp: 'the bundled tiny pack' },
  weights: {
    type: 'string',
    value: '<mode>',
    choices: WEIGHTS_CHOICES,
    help: 'stored | f16 | f32, as for personalize.',
    defaultHelp: 'stored',
  },
} as const;
