// diffusers AutoencoderKL: encode an image to the latent distribution's mean (and log
// variance) and decode a latent back to an image. Raw: the scaling factor is applied by
// the pipeline, not here.
import { toActivation, toFloat32 } from '../activations.ts';
import { resnetBlock } from '../layers/resnet-block.ts';
import type { Params } from '../params.ts';
import type { TensorOps } from '../tensor-ops.ts';
import type { VaeConfig } from './vae-config.ts';

// The VAE's resnets and attention use eps 1e-6 (diffusers hard-codes it for AutoencoderKL).
const EPS = 1e-6;

// Each resnet and the attention run as one segment where the backend has them (the engine):
// at 512 px one 128-channel activation is 128 MiB per image, so the VAE must not hold every
// intermediate of a pass at once (and in backward they are recomputed).
function segment<T>(ops: TensorOps<T>, fn: (x: T) => T, x: T): T {
  return ops.checkpoint ? ops.checkpoint(fn, [x]) : fn(x);
}

function resnet<T>(ops: TensorOps<T>, p: Params<T>, c: VaeConfig, x: T, ci: number, co: number): T {
  return segment(ops, (h) => resnetBlock(ops, p, { inChannels: ci, outChannels: co, groups: c.norm_num_groups, eps: EPS }, h, null), x);
}

// Single-head self-attention over pixels with a group norm and residual.
// x: (B, C, H, W) → (B, C, H, W)
function midAttention<T>(ops: TensorOps<T>, p: Params<T>, c: VaeConfig, x: T, C: number): T {
  const [B, , H, W] = ops.shape(x);
  const proj = (name: string, t: T) => ops.linear(t, p.get(`${name}.weight`, [C, C]), p.get(`${name}.bias`, [C]));
  // intermediates released once consumed, as in the decoder (reshapes are views: each handle is released)
  let h = ops.groupNorm(x, c.norm_num_groups, p.get('group_norm.weight', [C]), p.get('group_norm.bias', [C]), EPS);
  h = consume(ops, h, (t) => ops.transpose(t, [0, 2, 3, 1]));
  h = consume(ops, h, (t) => ops.reshape(t, [B, H * W, C]));
  const [q, k, v] = ['to_q', 'to_k', 'to_v'].map((name) => proj(name, h));
  ops.release?.(h);
  h = ops.attention(q, k, v, 1);
  for (const t of [q, k, v]) ops.release?.(t);
  h = consume(ops, h, (t) => proj('to_out.0', t));
  h = consume(ops, h, (t) => ops.reshape(t, [B, H, W, C]));
  h = consume(ops, h, (t) => ops.transpose(t, [0, 3, 1, 2]));
  return consume(ops, h, (t) => ops.add(t, x));
}

/** The mid block (resnet, one-head attention of width C, resnet) — x: (B, C, H, W) → (B, C, H, W) */
export function vaeMidBlock<T>(ops: TensorOps<T>, p: Params<T>, c: VaeConfig, x: T, C: number): T {
  let h = resnet(ops, p.sub('resnets.0'), c, x, C, C);
  if (c.mid_block_add_attention ?? true) {
    h = consume(ops, h, (t) => segment(ops, (u) => midAttention(ops, p.sub('attentions.0'), c, u, C), t));
  }
  return consume(ops, h, (t) => resnet(ops, p.sub('resnets.1'), c, t, C, C));
}

/**
 * f(x), then x's memory back to the pool (ops.release: without gradients only) — for an
 * activation the caller created and needs no more. At 512 px the decoder's activations are
 * 64–256 MiB each: holding each block's input until the whole decode returns doubled its peak.
 */
function consume<T>(ops: TensorOps<T>, x: T, f: (x: T) => T): T {
  const y = f(x);
  ops.release?.(x);
  return y;
}

export interface LatentDistribution<T> {
  mean: T;
  /** Log variance as predicted (diffusers clamps it to [−30, 20] only when sampling). */
  logvar: T;
}

/** image: (B, 3, H, W) in [−1, 1] → mean, logvar: (B, latent, H/f, W/f) */
export function vaeEncode<T>(ops: TensorOps<T>, params: Params<T>, c: VaeConfig, image: T): LatentDistribution<T> {
  const p = params.sub('encoder');
  const ch = c.block_out_channels;
  const L = c.latent_channels;
  // 1. conv_in, down blocks (the downsampler pads right/bottom only, then stride 2)
  let h = ops.conv2d(toActivation(ops, image), p.get('conv_in.weight', [ch[0], c.in_channels, 3, 3]), p.get('conv_in.bias', [ch[0]]), { padding: 1 });
  let prev = ch[0];
  ch.forEach((co, i) => {
    const b = p.sub(`down_blocks.${i}`);
    const ci = prev;
    // the whole block is a segment too, so only its output outlives it
    h = consume(ops, h, (input) =>
      segment(
        ops,
        (x) => {
          // x is the block's input or an earlier resnet's output: the VAE's own either way
          for (let j = 0; j < c.layers_per_block; j++) {
            x = consume(ops, x, (t) => resnet(ops, b.sub(`resnets.${j}`), c, t, j === 0 ? ci : co, co));
          }
          if (i === ch.length - 1) return x;
          return consume(ops, x, (t) =>
            ops.conv2d(t, b.get('downsamplers.0.conv.weight', [co, co, 3, 3]), b.get('downsamplers.0.conv.bias', [co]), {
              stride: 2,
              padding: [0, 0, 1, 1],
            }),
          );
        },
        input,
      ),
    );
    prev = co;
  });
  // 2. mid block, head → 2·latent channels (mean ‖ logvar), quant_conv
  const last = ch[ch.length - 1];
  h = consume(ops, h, (t) => vaeMidBlock(ops, p.sub('mid_block'), c, t, last));
  h = consume(ops, h, (t) =>
    ops.groupNorm(t, c.norm_num_groups, p.get('conv_norm_out.weight', [last]), p.get('conv_norm_out.bias', [last]), EPS, { silu: true }),
  );
  h = consume(ops, h, (t) => ops.conv2d(t, p.get('conv_out.weight', [2 * L, last, 3, 3]), p.get('conv_out.bias', [2 * L]), { padding: 1 }));
  if (c.use_quant_conv ?? true) {
    h = consume(ops, h, (t) => ops.conv2d(t, params.get('quant_conv.weight', [2 * L, 2 * L, 1, 1]), params.get('quant_conv.bias', [2 * L])));
  }
  h = toFloat32(ops, h);
  return { mean: ops.slice(h, 1, 0, L), logvar: ops.slice(h, 1, L, L) };
}

/** latent: (B, latent, h, w) → image: (B, out, h·f, w·f) */
export function vaeDecode<T>(ops: TensorOps<T>, params: Params<T>, c: VaeConfig, latent: T): T {
  const p = params.sub('decoder');
  const ch = c.block_out_channels;
  const rev = [...ch].reverse();
  const L = c.latent_channels;
  let h = toActivation(ops, latent);
  // Every activation below is the decoder's own and is released once consumed (not `latent`,
  // which is the caller's): at 512 px this takes the peak from 1.31 GiB to 0.63 GiB (the
  // 256→128 resnet at 512×512: its input, norm1's output and conv1's output).
  if (c.use_post_quant_conv ?? true) {
    h = ops.conv2d(h, params.get('post_quant_conv.weight', [L, L, 1, 1]), params.get('post_quant_conv.bias', [L]));
  }
  // 1. conv_in, mid block
  const convIn = (t: T) => ops.conv2d(t, p.get('conv_in.weight', [rev[0], L, 3, 3]), p.get('conv_in.bias', [rev[0]]), { padding: 1 });
  h = h === latent ? convIn(h) : consume(ops, h, convIn);
  h = consume(ops, h, (t) => vaeMidBlock(ops, p.sub('mid_block'), c, t, rev[0]));
  // 2. up blocks (layers_per_block + 1 resnets each), nearest 2× + conv between them
  let prev = rev[0];
  rev.forEach((co, i) => {
    const b = p.sub(`up_blocks.${i}`);
    const ci = prev;
    h = consume(ops, h, (input) =>
      segment(
        ops,
        (x) => {
          // x is the block's input or an earlier resnet's output: the VAE's own either way
          for (let j = 0; j <= c.layers_per_block; j++) {
            x = consume(ops, x, (t) => resnet(ops, b.sub(`resnets.${j}`), c, t, j === 0 ? ci : co, co));
          }
          if (i === rev.length - 1) return x;
          x = consume(ops, x, (t) => ops.upsampleNearest2x(t));
          return consume(ops, x, (t) =>
            ops.conv2d(t, b.get('upsamplers.0.conv.weight', [co, co, 3, 3]), b.get('upsamplers.0.conv.bias', [co]), { padding: 1 }),
          );
        },
        input,
      ),
    );
    prev = co;
  });
  // 3. head
  const c0 = ch[0];
  h = consume(ops, h, (t) =>
    ops.groupNorm(t, c.norm_num_groups, p.get('conv_norm_out.weight', [c0]), p.get('conv_norm_out.bias', [c0]), EPS, { silu: true }),
  );
  h = consume(ops, h, (t) =>
    ops.conv2d(t, p.get('conv_out.weight', [c.out_channels, c0, 3, 3]), p.get('conv_out.bias', [c.out_channels]), { padding: 1 }),
  );
  return toFloat32(ops, h);
}
