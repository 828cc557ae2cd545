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
// Each intermediate is released as soon as the next op has consumed it (ops.release: only
// without gradients): the block then holds at most x and three activations at once instead
// of all seven — the VAE decoder's 256→128 resnet at 512 px peaks at 640 MiB, not 1.1 GiB.
export function resnetBlock<T>(ops: TensorOps<T>, p: Params<T>, o: ResnetOptions, x: T, temb: T | null): T {
  const { inChannels: ci, outChannels: co, groups, eps } = o;
  const free = (t: T) => ops.release?.(t);
  // 1. norm1 + SiLU, conv1
  const n1 = ops.groupNorm(x, groups, p.get('norm1.weight', [ci]), p.get('norm1.bias', [ci]), eps, { silu: true });
  let h = ops.conv2d(n1, p.get('conv1.weight', [co, ci, 3, 3]), p.get('conv1.bias', [co]), { padding: 1 });
  free(n1);
  // 2. add the projected time embedding to every pixel
  if (o.tembChannels !== undefined) {
    if (temb === null) throw new Error(`${p.prefix}: time embedding required`);
    const t = ops.linear(
      ops.silu(temb),
      p.get('time_emb_proj.weight', [co, o.tembChannels]),
      p.get('time_emb_proj.bias', [co]),
    );
    const [b] = ops.shape(t);
    const ht = ops.add(h, ops.reshape(t, [b, co, 1, 1]));
    free(h);
    h = ht;
  }
  // 3. norm2 + SiLU, (dropout: inference/tuning use none), conv2
  const n2 = ops.groupNorm(h, groups, p.get('norm2.weight', [co]), p.get('norm2.bias', [co]), eps, { silu: true });
  free(h);
  h = ops.conv2d(n2, p.get('conv2.weight', [co, co, 3, 3]), p.get('conv2.bias', [co]), { padding: 1 });
  free(n2);
  // 4. residual, through a 1×1 conv when the width changes
  const skip =
    ci === co ? x : ops.conv2d(x, p.get('conv_shortcut.weight', [co, ci, 1, 1]), p.get('conv_shortcut.bias', [co]));
  const out = ops.add(skip, h);
  free(h);
  if (skip !== x) free(skip);
  const s = o.outputScaleFactor ?? 1;
  if (s === 1) return out;
  const scaled = ops.scale(out, 1 / s);
  free(out);
  return scaled;
}
