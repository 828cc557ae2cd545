// diffusers ResnetBlock2D (time_embedding_norm "default"), shared by the UNet (with a
// time embedding) and the VAE (without).
import type { Params } from '../params.ts';
import type { TensorOps } from '../tensor-ops.ts';

export interface ResnetOptions {
  inChannels: number;
  outChannels: number;
  groups: number;
  eps: number;
  /** Width of the time embedding; absent in the VAE. */
  tembChannels?: number;
  outputScaleFactor?: number;
}

// x: (B, Cin, H, W), temb: (B, Ct) → (B, Cout, H, W)
export function resnetBlock<T>(ops: TensorOps<T>, p: Params<T>, o: ResnetOptions, x: T, temb: T | null): T {
  const { inChannels: ci, outChannels: co, groups, eps } = o;
  // 1. norm1 + SiLU, conv1
  let h = ops.groupNorm(x, groups, p.get('norm1.weight', [ci]), p.get('norm1.bias', [ci]), eps, { silu: true });
  h = ops.conv2d(h, p.get('conv1.weight', [co, ci, 3, 3]), p.get('conv1.bias', [co]), { padding: 1 });
  // 2. add the projected time embedding to every pixel
  if (o.tembChannels !== undefined) {
    if (temb === null) throw new Error(`${p.prefix}: time embedding required`);
    const t = ops.linear(
      ops.silu(temb),
      p.get('time_emb_proj.weight', [co, o.tembChannels]),
      p.get('time_emb_proj.bias', [co]),
    );
    const [b] = ops.shape(t);
    h = ops.add(h, ops.reshape(t, [b, co, 1, 1]));
  }
  // 3. norm2 + SiLU, (dropout: inference/tuning use none), conv2
  h = ops.groupNorm(h, groups, p.get('norm2.weight', [co]), p.get('norm2.bias', [co]), eps, { silu: true });
  h = ops.conv2d(h, p.get('conv2.weight', [co, co, 3, 3]), p.get('conv2.bias', [co]), { padding: 1 });
  // 4. residual, through a 1×1 conv when the width changes
  const skip =
    ci === co ? x : ops.conv2d(x, p.get('conv_shortcut.weight', [co, ci, 1, 1]), p.get('conv_shortcut.bias', [co]));
  const out = ops.add(skip, h);
  const s = o.outputScaleFactor ?? 1;
  return s === 1 ? out : ops.scale(out, 1 / s);
}
