// `likeness <command>`: the Node CLI over the same engine the browser worker uses.
import { DEFAULTS } from '../domain/defaults.ts';
import { Engine } from '../engine/engine.ts';
import { BadRequest } from '../session/bad-request.ts';
import { optionsHelp, UsageError } from './args.ts';
import { EVAL_OPTIONS } from './commands/eval-options.ts';
import { GENERATE_OPTIONS } from './commands/generate-options.ts';
import { PACK_OPTIONS } from './commands/pack-options.ts';
import { PERSONALIZE_OPTIONS } from './commands/personalize-options.ts';

export const HELP = `likeness — personalize a text-to-image model from one photo, on WebGPU

Usage:
  likeness <command> [options]

Commands:
  personalize             One photo → a concept file (.safetensors).
  generate                Images from a prompt, with or without a concept.
  pack                    Build a model pack from a diffusers folder or a .safetensors checkpoint.
  train-encoder           Pre-train the tuning encoder on a folder of photos (paper §3, App. B–C).
  eval                    CLIP image–image / text–image scores of personalization variants (App. B, D).
  gpu                     Acquire the WebGPU adapter and print what it offers (features,
                          maxBufferSize, maxStorageBufferBindingSize).
  bench [kernels|pipeline]
                          kernels: engine vs onnxruntime-web (WebGPU EP) per op on the same
                          adapter; pipeline: UNet forward/backward, tuning step, personalize
                          and generate times on the tiny pack. Prints tables, writes
                          bench/results.json (both suites when none is named).
  bench scale             Stable Diffusion 1.5 shapes (synthetic random weights) phase by
                          phase: time, peak GPU pool, largest buffer, RSS (see below).
  help                    Show this text.

personalize --image <photo.png|jpg> --out <concept.safetensors> [options]
${optionsHelp(PERSONALIZE_OPTIONS)}  Prints which start was used (tuning encoder or class word); the concept file records it.

generate --prompt "<text>" --out <folder> [options]
${optionsHelp(GENERATE_OPTIONS)}  PNG files carry the settings as the app writes them: an A1111 \`parameters\` entry and
  the exact settings as JSON under \`likeness\` (the same bytes as the app's download).
  Defaults are resolved once: the option, the concept (its blend), the pack, then the
  table in src/domain/defaults.ts (docs/pipeline.md).

pack --from <diffusers folder | model.safetensors> [--name <name>] [options]
  Builds a pack from an SD 1.x / 2.x diffusers folder or an original single-file
  checkpoint (A1111/ComfyUI layout); see docs/packs.md. .ckpt pickles are refused.
${optionsHelp(PACK_OPTIONS)}
train-encoder --images <folder|list> --out <dir> [options]
  --pack <dir>            Model pack whose CLIP vision, text encoder, UNet and VAE stay frozen.
  --boxes <json>          Square crops per file: {"name.jpg": [x, y, size]} (default: centre square).
  --steps <n>             Optimizer steps (default 1000).
  --batch <n>             Images per micro-batch; the contrastive negatives (default 4).
  --accum <n>             Micro-batches per step (gradient accumulation, default 1).
  --lr <x>                Peak Adam learning rate (default 1e-4), after --warmup <n> linear
                          warm-up steps (default min(100, steps/10)), then cosine decay.
  --reg <name>            Embedding regulariser: none | l2 | nn-cosine | contrastive (default).
  --tau <x>               Temperature of the contrastive loss (default 0.07).
  --positives <k>         Nearest tokens used as positives (default 5).
  --lambda-emb <x>        Weight of ‖v*‖² (default 1e-3; not with --reg none).
  --lambda-reg <x>        Weight of the nn-cosine / contrastive term (default 1e-2).
  --lambda-hyper <x>      Weight of Σ‖ΔW‖² (default 1e-2).
  --blend <α>             Dual-path blend during training (default ${DEFAULTS.personalize.tuningBlend}, the tuning α).
  --seed <n>              Data order, augmentation and noise (default 0); --init-seed <n> the
                          encoder's initialisation; --init <dir> start from a trained encoder.
  --save-every <n>        Checkpoint interval (default: min(500, steps)); --eval-every <n>
                          logs the loss on fixed samples too.
  --resume <ckpt>         Continue a run bit for bit from <out>/checkpoints/step-N.safetensors.
  Writes <out>/config.json + model.safetensors (for pack --encoder), log.jsonl, checkpoints/.

eval --concepts <folder of photos> --prompts <file> [options]
${optionsHelp(EVAL_OPTIONS)}
Options for bench:
  --quick                 Smaller shapes (smoke run, e.g. on a software adapter).
  --out <file>            Where to write the JSON (default bench/results.json).
  --only <op,op>          Run only these benchmarks: matmul, conv2d, attention-self,
                          attention-cross, group-norm, layer-norm, silu.
  --runs <n>              Timed samples per measurement (default 5; --quick 3).

Options for bench scale (writes bench/results-scale.json; exit 1 if a phase failed):
  --size <px>             Image size, a multiple of 64 (default 512).
  --phases <a,b>          Subset of: open, text-encoder, clip-vision, vae-encode,
                          unet-batch2, tuning-step, vae-decode, personalize, generate.
  --variant <name>        sd15 (default), sd21, sd21-base.   --fp32   fp32 weights (default fp16).
  --unet-layers <n>, --text-layers <n>, --vision-layers <n>   Fewer layers (smoke runs).
  --tuning-steps <n>      Personalize steps (default 12).  --steps <n>  Generate steps (default 25).
  --dir <dir>             Where the synthetic model and its pack are kept (default bench/.scale).
  --activations <mode>    auto (default: fp16 with shader-f16 and fp16 weights), f32 or f16.
  --binding-limit <bytes> Bind at most this much per storage binding (e.g. 134217728, the
                          browsers' default maxStorageBufferBindingSize).

Environment:
  LIKENESS_VULKAN=lavapipe|swiftshader   Choose the software Vulkan driver in Node
                                         (default: lavapipe when Mesa ≥ 25 is installed).
`;

export async function main(argv: string[]): Promise<number> {
  const [command = 'help', ...rest] = argv;
  switch (command) {
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return 0;
    case 'gpu': {
      const engine = await Engine.create();
      const { info } = engine;
      process.stdout.write(
        `adapter: ${info.name}\nruntime: ${info.runtime}\nshader-f16: ${info.f16}\n` +
          `fp16 activations: ${info.f16 ? 'yes, for fp16 packs at inference' : 'no (needs shader-f16)'}\n` +
          `subgroups: ${info.subgroups}\n` +
          `maxBufferSize: ${engine.device.limits.maxBufferSize}\n` +
          `maxStorageBufferBindingSize: ${engine.device.limits.maxStorageBufferBindingSize}\n`,
      );
      engine.destroy();
      return 0;
    }
    case 'personalize':
    case 'generate':
    case 'pack':
    case 'train-encoder':
    case 'eval':
      return runCommand(command, rest);
    case 'bench': {
      const { runBench } = await import('../../bench/run.ts');
      return runBench(rest);
    }
    default:
      process.stderr.write(`likeness: unknown command '${command}'\n\n${HELP}`);
      return 2;
  }
}

const log = (line: string) => process.stdout.write(`${line}\n`);

async function runCommand(
  command: 'personalize' | 'generate' | 'pack' | 'train-encoder' | 'eval',
  argv: string[],
): Promise<number> {
  try {
    if (command === 'train-encoder')
      return await (await import('./commands/train-encoder.ts')).trainEncoderCommand(argv, log);
    if (command === 'eval') return await (await import('./commands/eval.ts')).evalCommand(argv, log);
    if (command === 'personalize')
      return await (await import('./commands/personalize.ts')).personalizeCommand(argv, log);
    if (command === 'generate') return await (await import('./commands/generate.ts')).generateCommand(argv, log);
    return await (await import('./commands/pack.ts')).packCommand(argv, log);
  } catch (e) {
    if (e instanceof UsageError || e instanceof BadRequest) {
      process.stderr.write(`likeness ${command}: ${e.message}\n(see likeness --help)\n`);
      return 2;
    }
    process.stderr.write(`likeness ${command}: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}
