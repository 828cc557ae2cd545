// diffusers UNet2DConditionModel (SD 1.x / 2.x): ε_θ(z_t, t, C), with LoRA and the dual
// path threaded to every transformer block, and an encoder-only mode (down blocks + mid
// block) whose output is the spatial feature map the tuning encoder reads.
import { toActivation, toFloat32 } from '../activations.ts';
import { resnetBlock } from '../layers/resnet-block.ts';
import type { Params } from '../params.ts';
import type { TensorOps } from '../tensor-ops.ts';
import { transformer2d, type Conditioning } from './transformer.ts';
import type { ResolvedUNetConfig } from './unet-config.ts';

export interface UNetInputs<T, Times> {
  /** z_t: (B, in_channels, h, w) */
  sample: T;
  /** t: (B) */
  timesteps: Times;
  cond: Conditioning<T>;
  /** Recompute each resnet / transformer block in backward (backends with ops.checkpoint). */
  checkpointing?: boolean;
  /**
   * Without gradients the transformers' feed-forward runs over token chunks whose GEGLU
   * projection takes at most this many bytes (default FEED_FORWARD_CHUNK_BYTES, 8 MiB); the
   * numbers are the same — tests lower it to see several chunks at small sizes.
   */
  feedForwardChunkBytes?: number;
}

interface Ctx<T> {
  ops: TensorOps<T>;
  cfg: ResolvedUNetConfig;
  temb: T;
  cond: Conditioning<T>;
  checkpointing: boolean;
  feedForwardChunkBytes?: number;
}

function resnet<T>(c: Ctx<T>, p: Params<T>, x: T, ci: number, co: number, outputScaleFactor = 1): T {
  const o = {
    inChannels: ci,
    outChannels: co,
    groups: c.cfg.norm_num_groups,
    eps: c.cfg.norm_eps,
    tembChannels: c.cfg.timeEmbedDim,
    outputScaleFactor,
  };
  const run = (h: T, temb: T) => resnetBlock(c.ops, p, o, h, temb);
  return c.checkpointing && c.ops.checkpoint ? c.ops.checkpoint(run, [x, c.temb]) : run(x, c.temb);
}

function transformer<T>(c: Ctx<T>, p: Params<T>, x: T, channels: number, heads: number): T {
  const o = {
    channels,
    heads,
    crossAttentionDim: c.cfg.cross_attention_dim,
    groups: c.cfg.norm_num_groups,
    useLinearProjection: c.cfg.use_linear_projection,
    feedForwardChunkBytes: c.feedForwardChunkBytes,
  };
  const { cond } = c;
  if (!c.checkpointing || !c.ops.checkpoint || (cond.dual && typeof cond.dual.alpha !== 'number')) {
    return transformer2d(c.ops, p, o, x, cond);
  }
  // Tensors that carry gradient enter the segment as inputs, so the recomputation hands
  // their gradients back: the prompt encodings (they depend on v*) and this block's LoRA
  // tensors (encoder outputs while pre-training, parameters while tuning).
  const dual = cond.dual;
  const own = [...(cond.lora?.layers ?? [])].filter(([m]) => m.startsWith(`${p.prefix}.`));
  const head = dual ? 3 : 2;
  const run = (...xs: T[]) => {
    const layers = new Map(cond.lora?.layers);
    own.forEach(([m], i) => layers.set(m, { A: xs[head + 2 * i], B: xs[head + 2 * i + 1] }));
    const lora = cond.lora ? { layers, scale: cond.lora.scale } : null;
    return transformer2d(c.ops, p, o, xs[0], { context: xs[1], lora, dual: dual ? { ...dual, hardContext: xs[2] } : null });
  };
  const inputs = [x, cond.context, ...(dual ? [dual.hardContext] : []), ...own.flatMap(([, pair]) => [pair.A, pair.B])];
  return c.ops.checkpoint(run, inputs);
}

/**
 * f(x), then x's memory back to the pool (ops.release: without gradients only) — for an
 * activation this file made and needs no more (never the sample, the context or a skip
 * connection still to be concatenated). At 512 px the up path's activations are 10–30 MiB
 * each; held until the call returned they were half the UNet's peak.
 */
function consume<T>(ops: TensorOps<T>, x: T, f: (x: T) => T): T {
  const y = f(x);
  ops.release?.(x);
  return y;
}

// 1.–3. time embedding, conv_in, down blocks, mid block. Returns the mid-block output and
// the skip connections for the up blocks.
function encode<T, Times>(ops: TensorOps<T, unknown, Times>, p: Params<T>, cfg: ResolvedUNetConfig, inputs: UNetInputs<T, Times>) {
  const ch = cfg.block_out_channels;
  const c0 = ch[0];
  // 1. sinusoidal features of t → MLP
  const tproj = ops.timestepEmbedding(inputs.timesteps, c0, {
    flipSinToCos: cfg.flip_sin_to_cos,
    downscaleFreqShift: cfg.freq_shift,
  });
  const te = p.sub('time_embedding');
  const td = cfg.timeEmbedDim;
  let temb = ops.linear(tproj, te.get('linear_1.weight', [td, c0]), te.get('linear_1.bias', [td]));
  temb = ops.linear(ops.silu(temb), te.get('linear_2.weight', [td, td]), te.get('linear_2.bias', [td]));
  // From here on, activations are in the backend's activation dtype (fp16 at inference where asked).
  const c: Ctx<T> = {
    ops,
    cfg,
    temb: toActivation(ops, temb),
    cond: activationConditioning(ops, inputs.cond),
    checkpointing: !!inputs.checkpointing,
    feedForwardChunkBytes: inputs.feedForwardChunkBytes,
  };

  // 2. conv_in and the down blocks; every layer's output is kept as a skip connection
  let h = ops.conv2d(toActivation(ops, inputs.sample), p.get('conv_in.weight', [c0, cfg.in_channels, 3, 3]), p.get('conv_in.bias', [c0]), { padding: 1 });
  const skips: T[] = [h];
  let prev = c0;
  cfg.down_block_types.forEach((type, i) => {
    const b = p.sub(`down_blocks.${i}`);
    const co = ch[i];
    for (let j = 0; j < cfg.layers_per_block; j++) {
      h = resnet(c, b.sub(`resnets.${j}`), h, j === 0 ? prev : co, co);
      // (the resnet's input is a skip connection: kept; its output, when a transformer follows, is not)
      if (type === 'CrossAttnDownBlock2D') h = consume(ops, h, (t) => transformer(c, b.sub(`attentions.${j}`), t, co, cfg.heads[i]));
      skips.push(h);
    }
    if (i < ch.length - 1) {
      h = ops.conv2d(h, b.get('downsamplers.0.conv.weight', [co, co, 3, 3]), b.get('downsamplers.0.conv.bias', [co]), {
        stride: 2,
        padding: cfg.downsample_padding ?? 1,
      });
      skips.push(h);
    }
    prev = co;
  });

  // 3. mid block: resnet, transformer, resnet
  const last = ch[ch.length - 1];
  const m = p.sub('mid_block');
  const s = cfg.mid_block_scale_factor ?? 1;
  h = resnet(c, m.sub('resnets.0'), h, last, last, s);
  h = consume(ops, h, (t) => transformer(c, m.sub('attentions.0'), t, last, cfg.heads[cfg.heads.length - 1]));
  h = consume(ops, h, (t) => resnet(c, m.sub('resnets.1'), t, last, last, s));
  return { h, skips, c };
}

function activationConditioning<T>(ops: TensorOps<T>, cond: Conditioning<T>): Conditioning<T> {
  const dual = cond.dual && {
    hardContext: toActivation(ops, cond.dual.hardContext),
    alpha: typeof cond.dual.alpha === 'number' ? cond.dual.alpha : toActivation(ops, cond.dual.alpha),
  };
  return { ...cond, context: toActivation(ops, cond.context), ...(dual ? { dual } : {}) };
}

/** The UNet-encoder features (mid-block output) that the tuning encoder reads. */
export function unetEncoderFeatures<T, Times>(ops: TensorOps<T, unknown, Times>, p: Params<T>, cfg: ResolvedUNetConfig, inputs: UNetInputs<T, Times>): T {
  return toFloat32(ops, encode(ops, p, cfg, inputs).h);
}

/** ε_θ(z_t, t, C): (B, in_channels, h, w) → (B, out_channels, h, w) */
export function unet<T, Times>(ops: TensorOps<T, unknown, Times>, p: Params<T>, cfg: ResolvedUNetConfig, inputs: UNetInputs<T, Times>): T {
  const { h: mid, skips, c } = encode(ops, p, cfg, inputs);
  const ch = cfg.block_out_channels;
  const rev = [...ch].reverse();
  const revHeads = [...cfg.heads].reverse();
  let h = mid;
  // 4. up blocks: each layer concatenates the matching skip connection (last in, first out)
  let prev = rev[0];
  cfg.up_block_types.forEach((type, i) => {
    const b = p.sub(`up_blocks.${i}`);
    const co = rev[i];
    const ci = rev[Math.min(i + 1, ch.length - 1)];
    const n = cfg.layers_per_block + 1;
    for (let j = 0; j < n; j++) {
      const skip = skips.pop()!;
      const skipCh = j === n - 1 ? ci : co;
      const inCh = j === 0 ? prev : co;
      const joined = ops.concat([h, skip], 1);
      ops.release?.(h);
      ops.release?.(skip);
      h = consume(ops, joined, (t) => resnet(c, b.sub(`resnets.${j}`), t, inCh + skipCh, co));
      if (type === 'CrossAttnUpBlock2D') h = consume(ops, h, (t) => transformer(c, b.sub(`attentions.${j}`), t, co, revHeads[i]));
    }
    if (i < ch.length - 1) {
      h = consume(ops, h, (t) => ops.upsampleNearest2x(t));
      h = consume(ops, h, (t) => ops.conv2d(t, b.get('upsamplers.0.conv.weight', [co, co, 3, 3]), b.get('upsamplers.0.conv.bias', [co]), { padding: 1 }));
    }
    prev = co;
  });
  // 5. output head
  const c0 = ch[0];
  h = consume(ops, h, (t) => ops.groupNorm(t, cfg.norm_num_groups, p.get('conv_norm_out.weight', [c0]), p.get('conv_norm_out.bias', [c0]), cfg.norm_eps, { silu: true }));
  const out = consume(ops, h, (t) => ops.conv2d(t, p.get('conv_out.weight', [cfg.out_channels, c0, 3, 3]), p.get('conv_out.bias', [cfg.out_channels]), { padding: 1 }));
  return toFloat32(ops, out);
}
