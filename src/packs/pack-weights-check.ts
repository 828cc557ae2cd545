// Every parameter the models will ask for, checked against the pack's safetensors headers
// before anything runs: a pack with a missing tensor or a wrong shape is refused at load,
// naming the tensor, instead of failing deep inside a kernel later.
import { clipText, clipTokenEmbeddings } from '../models/clip/clip-text.ts';
import { clipVision } from '../models/clip/clip-vision.ts';
import { Params } from '../models/params.ts';
import { ParamRecorder, ShapeOps } from '../models/shape-ops.ts';
import { tuningEncoderParamShapes } from '../models/tuning-encoder/tuning-encoder-init.ts';
import { loraTargets } from '../models/tuning-encoder/tuning-encoder-config.ts';
import { unet } from '../models/unet/unet.ts';
import { resolveUNetConfig } from '../models/unet/unet-config.ts';
import { vaeDecode, vaeEncode } from '../models/vae/vae.ts';
import { checkVaeConfig } from '../models/vae/vae-config.ts';
import type { Manifest } from './manifest.ts';
import type { SafetensorsHeader } from './safetensors.ts';
import { MAX_LISTED_PROBLEMS } from '../domain/limits.ts';
import { PackError } from '../domain/errors.ts';

export class PackWeightsError extends PackError {
  /** `problems` holds the first MAX_LISTED_PROBLEMS; `total` counts them all. */
  constructor(
    readonly problems: string[],
    readonly total = problems.length,
  ) {
    super(
      `the pack's weights do not match its configs (${total} problem${total === 1 ? '' : 's'}):\n  ${problems.slice(0, MAX_LISTED_PROBLEMS).join('\n  ')}${total > MAX_LISTED_PROBLEMS ? `\n  … and ${total - MAX_LISTED_PROBLEMS} more` : ''}`,
    );
    this.name = 'PackWeightsError';
  }
}

/** name → shape of every parameter each component's model code asks for. */
export function expectedPackParams(m: Manifest): Record<string, Map<string, number[]>> {
  const ops = new ShapeOps();
  const a = m.architecture;
  const t = (shape: number[]) => ({ shape });
  const text = new ParamRecorder();
  const tc = a.textEncoder;
  clipText(ops, new Params(text), tc, clipTokenEmbeddings(ops, new Params(text), tc, t([1, 77])), t([1, 77]));
  const u = resolveUNetConfig(a.unet);
  const un = new ParamRecorder();
  unet(ops, new Params(un), u, {
    sample: t([1, u.in_channels, m.latentSize, m.latentSize]),
    timesteps: t([1]),
    cond: { context: t([1, 77, u.cross_attention_dim]), lora: null },
  });
  const vc = checkVaeConfig(a.vae);
  const vae = new ParamRecorder();
  vaeEncode(ops, new Params(vae), vc, t([1, vc.in_channels, m.imageSize, m.imageSize]));
  vaeDecode(ops, new Params(vae), vc, t([1, vc.latent_channels, m.latentSize, m.latentSize]));
  const ic = a.imageEncoder;
  const vision = new ParamRecorder();
  clipVision(ops, new Params(vision), ic, t([1, 3, ic.image_size, ic.image_size]));
  const out: Record<string, Map<string, number[]>> = {
    text_encoder: text.requested,
    unet: un.requested,
    vae: vae.requested,
    image_encoder: vision.requested,
  };
  if (a.tuningEncoder) out.tuning_encoder = tuningEncoderParamShapes(a.tuningEncoder, loraTargets(u));
  return out;
}

/** Throws PackWeightsError listing every missing tensor and wrong shape. */
export function checkPackWeights(m: Manifest, headers: Record<string, SafetensorsHeader>): void {
  // Only the first few are kept as text: a config claiming a million layers is one problem
  // repeated, not a million lines to build.
  const problems: string[] = [];
  let total = 0;
  const problem = (text: () => string) => {
    if (total++ < MAX_LISTED_PROBLEMS) problems.push(text());
  };
  for (const [component, expected] of Object.entries(expectedPackParams(m))) {
    const h = headers[component];
    if (!h) {
      problem(() => `${component}: no weights file`);
      continue;
    }
    for (const [name, shape] of expected) {
      const info = h.byName.get(name);
      if (!info) problem(() => `${component}: missing tensor '${name}' [${shape.join(', ')}]`);
      else if (info.shape.join() !== shape.join()) {
        problem(
          () =>
            `${component}: '${name}' has shape [${info.shape.join(', ')}], the config implies [${shape.join(', ')}]`,
        );
      } else if (!['F32', 'F16', 'BF16'].includes(info.dtype))
        problem(() => `${component}: '${name}' has dtype ${info.dtype}; F32/F16/BF16 expected`);
    }
  }
  if (total) throw new PackWeightsError(problems, total);
}
