// likeness personalize --image photo.jpg [--pack dir] [--token S*] [--steps 12] [--class-word dog]
//                      [--crop x,y,size] [--seed 0] [--batch 1] [--checkpointing] [--kohya]
//                      [--weights stored|f16|f32] --out concept.safetensors
import { readFileSync, writeFileSync } from 'node:fs';
import { Engine } from '../../engine/engine.ts';
import { loadPackFromFolder } from '../../packs/pack-node.ts';
import { decodeImage } from '../../pipeline/image/decode-node.ts';
import { cropRect } from '../../pipeline/image/transform.ts';
import { PackRuntime } from '../../pipeline/pack-runtime.ts';
import { DEFAULT_PERSONALIZE, NumericalError, personalize, STEPS_WITHOUT_ENCODER } from '../../pipeline/personalize.ts';
import { exportConcept } from '../../storage/concept-safetensors.ts';
import { parseArgs, UsageError, weightsOption } from '../args.ts';
import { ensureTinyPack } from '../defaults.ts';

export async function personalizeCommand(argv: string[], log: (s: string) => void): Promise<number> {
  const { options: o, positional } = parseArgs(argv, {
    image: { type: 'string' },
    pack: { type: 'string' },
    weights: { type: 'string' },
    token: { type: 'string' },
    steps: { type: 'number' },
    'class-word': { type: 'string' },
    crop: { type: 'string' },
    seed: { type: 'number' },
    lr: { type: 'number' },
    batch: { type: 'number' },
    checkpointing: { type: 'flag' },
    kohya: { type: 'flag' },
    out: { type: 'string' },
  });
  if (positional.length) throw new UsageError(`unexpected argument ${positional[0]}`);
  if (typeof o.image !== 'string') throw new UsageError('personalize needs --image <photo>');
  if (typeof o.out !== 'string') throw new UsageError('personalize needs --out <concept.safetensors>');
  const packDir = typeof o.pack === 'string' ? o.pack : ensureTinyPack(log);

  let image = await decodeImage(new Uint8Array(readFileSync(o.image)));
  if (typeof o.crop === 'string') {
    const m = /^(\d+),(\d+),(\d+)$/.exec(o.crop);
    if (!m) throw new UsageError('--crop must be x,y,size in pixels of the photo');
    image = cropRect(image, { x: +m[1], y: +m[2], width: +m[3], height: +m[3] });
  }
  const engine = await Engine.create();
  log(`adapter: ${engine.info.name}`);
  const rt = await PackRuntime.open(engine, await loadPackFromFolder(packDir), { weights: weightsOption(o.weights) });
  try {
    const hasEncoder = rt.encoder !== null;
    if (!hasEncoder) log(`this pack has no tuning encoder: starting from the class word, ${STEPS_WITHOUT_ENCODER} steps by default`);
    else if (rt.encoder?.config.trained === false) log('note: this pack\'s tuning encoder is untrained (test pack): results show the pipeline, not the method\'s quality');
    const t0 = performance.now();
    const concept = await personalize(
      rt,
      image,
      {
        ...DEFAULT_PERSONALIZE,
        placeholder: typeof o.token === 'string' ? o.token : DEFAULT_PERSONALIZE.placeholder,
        steps: typeof o.steps === 'number' ? o.steps : hasEncoder ? DEFAULT_PERSONALIZE.steps : STEPS_WITHOUT_ENCODER,
        learningRate: typeof o.lr === 'number' ? o.lr : DEFAULT_PERSONALIZE.learningRate,
        classWord: typeof o['class-word'] === 'string' ? o['class-word'] : undefined,
        seed: typeof o.seed === 'number' ? o.seed : 0,
        batch: typeof o.batch === 'number' ? o.batch : 1,
        // the flag forces it on; otherwise personalize decides by size (on from 256 px)
        checkpointing: o.checkpointing === true ? true : undefined,
      },
      (e) => {
        if (e.stage === 'encoding') log('encoding the photo …');
        if (e.stage === 'nearest') log(`near: ${e.words.join(', ')}`);
        if (e.stage === 'tuning') log(`step ${e.step}/${e.steps}  loss ${e.loss.toFixed(4)}  (diffusion ${e.diffusionLoss.toFixed(4)})`);
      },
    );
    writeFileSync(o.out, exportConcept(concept, { naming: o.kohya ? 'kohya' : 'peft' }));
    log(`concept "${concept.placeholder}" written to ${o.out} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return 0;
  } catch (e) {
    if (e instanceof NumericalError) {
      writeFileSync(o.out, exportConcept(e.fallback, { naming: o.kohya ? 'kohya' : 'peft' }));
      log(`${e.message}\nthe encoder's prediction was written to ${o.out}`);
      return 3;
    }
    throw e;
  } finally {
    rt.dispose();
    engine.destroy();
  }
}
