// A random-weight single-file Stable Diffusion checkpoint in the original LDM layout (what
// A1111 / ComfyUI / model sites use), for tests and benchmarks of `likeness pack --from
// <file>` and the browser's Model step. It is the synthetic diffusers model of
// synthetic-sd.ts (real widths; layers and image size may be cut) renamed by
// ldm-convert.ts's inverse table: every tensor holds exactly the values the diffusers
// folder of the same options would (SD 2's q/k/v stacked into in_proj, the VAE's mid-block
// attention as 1×1 convs), so a pack built from either is the same. SD 2 files also carry
// what real ones do and a pack leaves out: OpenCLIP's last block, text projection and
// logit scale.
//
// `configOut` writes the diffusers configs the file needs when its layout is not SD's own
// (fewer layers per block, a smaller image): unet/, vae/, text_encoder/ config.json and
// scheduler/, plus image_encoder/ with weights (a single file has none); with
// `tokenizer: true` also tokenizer/ (otherwise the builder falls back to the bundled merges).
// Node only.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { diffusersToLdmName, type LdmComponent, type LdmConfigs, type SdFamily } from './ldm-convert.ts';
import {
  planSyntheticSd,
  writeRandomSafetensors,
  type KeyEntry,
  type SyntheticComponent,
  type SyntheticSdOptions,
} from './synthetic-sd.ts';

export interface SyntheticLdmOptions extends Omit<SyntheticSdOptions, 'out'> {
  /** The .safetensors file to write. */
  out: string;
  /** A folder for the configs (and image encoder) the file needs; nothing when absent. */
  configOut?: string;
  /** Put tokenizer/ (vocab.json, merges.txt, tokenizer_config.json) into configOut. */
  tokenizer?: boolean;
}

export interface SyntheticLdmSummary {
  file: { tensors: number; parameters: number; bytes: number };
  family: SdFamily;
}

const REFERENCE = new URL('../../../shared/data/reference/', import.meta.url);

/** The LDM-named tensors of the UNet, VAE and text encoder, each listing its diffusers sources. */
export function ldmKeys(
  components: readonly SyntheticComponent[],
  family: SdFamily,
): { keys: KeyEntry[]; configs: LdmConfigs } {
  const byDir = (d: SyntheticComponent['dir']) => components.find((c) => c.dir === d)!;
  const configs: LdmConfigs = {
    unet: byDir('unet').config as never,
    vae: byDir('vae').config as never,
    textLayers: byDir('text_encoder').config.num_hidden_layers as number,
  };
  const out = new Map<string, KeyEntry>();
  for (const dir of ['unet', 'vae', 'text_encoder'] as const satisfies readonly LdmComponent[]) {
    for (const k of byDir(dir).keys) {
      const name = diffusersToLdmName(dir, k.name, family, configs);
      const part = { name: k.name, shape: k.shape };
      const prev = out.get(name);
      if (prev) {
        // SD 2 q, k, v → in_proj (the conversion takes rows 0:C, C:2C, 2C:3C).
        prev.from!.push(part);
        prev.from!.sort((a, b) => qkvOrder(a.name) - qkvOrder(b.name));
        prev.shape = [prev.from!.reduce((n, p) => n + p.shape[0], 0), ...k.shape.slice(1)];
        continue;
      }
      const conv1x1 = dir === 'vae' && /mid_block\.attentions\.0\.(to_q|to_k|to_v|to_out\.0)\.weight$/.test(k.name);
      out.set(name, { name, shape: conv1x1 ? [...k.shape, 1, 1] : [...k.shape], from: [part] });
    }
  }
  if (family === 'sd2') {
    // What a real SD 2 file holds beyond diffusers' 23 layers: OpenCLIP's 24th block (a copy
    // of the last block's names and shapes), its text projection and logit scale.
    const last = configs.textLayers - 1;
    for (const k of [...out.values()]) {
      const m = /^(cond_stage_model\.model\.transformer\.resblocks\.)(\d+)(\..*)$/.exec(k.name);
      if (m && Number(m[2]) === last) {
        const name = `${m[1]}${last + 1}${m[3]}`;
        out.set(name, { name, shape: [...k.shape] });
      }
    }
    const width = byDir('text_encoder').config.hidden_size as number;
    out.set('cond_stage_model.model.text_projection', {
      name: 'cond_stage_model.model.text_projection',
      shape: [width, width],
    });
    out.set('cond_stage_model.model.logit_scale', { name: 'cond_stage_model.model.logit_scale', shape: [] });
  }
  return { keys: [...out.values()], configs };
}

const qkvOrder = (name: string) => ['q_proj', 'k_proj', 'v_proj'].findIndex((p) => name.includes(`.${p}.`));

export function writeSyntheticLdm(o: SyntheticLdmOptions): SyntheticLdmSummary {
  const plan = planSyntheticSd(o);
  const family: SdFamily = (o.variant ?? 'sd15') === 'sd15' ? 'sd1' : 'sd2';
  const log = o.log ?? (() => {});
  const { keys } = ldmKeys(plan.components, family);
  const t0 = performance.now();
  const r = writeRandomSafetensors(o.out, keys, plan.dtype, plan.seed);
  log(
    `${o.out}: ${keys.length} tensors, ${(r.parameters / 1e6).toFixed(1)} M parameters, ${(r.bytes / 1e6).toFixed(0)} MB (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );
  if (o.configOut) {
    const dir = o.configOut;
    for (const c of plan.components) {
      mkdirSync(join(dir, c.dir), { recursive: true });
      writeFileSync(join(dir, c.dir, 'config.json'), JSON.stringify(c.config, null, 2) + '\n');
      if (c.dir === 'image_encoder') writeRandomSafetensors(join(dir, c.dir, c.file), c.keys, plan.dtype, plan.seed);
    }
    mkdirSync(join(dir, 'scheduler'), { recursive: true });
    writeFileSync(join(dir, 'scheduler', 'scheduler_config.json'), JSON.stringify(plan.scheduler, null, 2) + '\n');
    if (o.tokenizer) {
      mkdirSync(join(dir, 'tokenizer'), { recursive: true });
      for (const f of ['vocab.json', 'merges.txt', 'tokenizer_config.json'])
        copyFileSync(new URL(`tiny-sd/tokenizer/${f}`, REFERENCE), join(dir, 'tokenizer', f));
    }
    log(`${dir}: configs${o.tokenizer ? ', tokenizer' : ''} and image_encoder/`);
  }
  return { file: { tensors: keys.length, ...r }, family };
}
