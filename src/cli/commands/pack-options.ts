// `likeness pack`'s options, declared once: parsing (../args.ts) and --help (../main.ts) both
// read them.
import { SD_VARIANTS } from '../../packs/source-configs.ts';

export const PACK_OPTIONS = {
  from: {
    type: 'string',
    value: '<dir|file>',
    required: true,
    help: 'A diffusers folder or an original single-file .safetensors checkpoint.',
  },
  out: {
    type: 'string',
    value: '<dir>',
    help: 'Where to write the pack.',
    defaultHelp: 'models/<name>/, which the app serves',
  },
  name: { type: 'string', value: '<text>', help: 'Pack name.', defaultHelp: "the source's folder or file name" },
  'image-encoder': {
    type: 'string',
    value: '<dir>',
    help: 'CLIPVisionModelWithProjection folder when --from has none.',
  },
  encoder: {
    type: 'string',
    value: '<dir>',
    help: 'Trained tuning encoder (config.json + model.safetensors). Without it the pack has NO tuning encoder: personalize then needs --class-word and tunes longer from it.',
  },
  'untrained-encoder': {
    type: 'flag',
    help: 'Pack the untrained, deterministic initialisation instead (tests, the tiny pack, a starting point for train-encoder).',
  },
  seed: {
    type: 'integer',
    value: '<n>',
    min: 0,
    help: "The untrained encoder's initialisation seed (with --untrained-encoder).",
  },
  fp16: { type: 'flag', help: 'Store weights as fp16 (fp32 and bf16 sources are rounded).' },
  vae: { type: 'string', value: '<dir|file>', help: 'Replace the VAE: a diffusers vae folder or a .safetensors file.' },
  scheduler: { type: 'string', value: '<file|dir>', help: "A scheduler_config.json replacing the source's." },
  tokenizer: {
    type: 'string',
    value: '<file|dir>',
    help: 'CLIP merges.txt (or bpe_simple_vocab_16e6.txt.gz, or a folder with tokenizer/merges.txt); single files carry no tokenizer, so without it the bundled CLIP merges are used.',
  },
  config: {
    type: 'string',
    value: '<dir>',
    help: 'Single file: take unet/vae/text_encoder/scheduler configs (and the tokenizer) from a diffusers folder, for non-standard models.',
  },
  variant: {
    type: 'string',
    value: '<name>',
    choices: SD_VARIANTS,
    help: 'Single file without --config: sd15 | sd21 (768, v-prediction) | sd21-base (512, epsilon).',
    defaultHelp: 'sd15 for SD 1.x weights; for SD 2.x sd21, or sd21-base when the file name says base/512',
  },
  ema: { type: 'flag', help: 'Single file: take the UNet from its EMA copy (model_ema.*).' },
  'no-graphs': { type: 'flag', help: 'Skip the ONNX graphs.' },
  quiet: { type: 'flag', help: 'No progress lines.' },
} as const;
