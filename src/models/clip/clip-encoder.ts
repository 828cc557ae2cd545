// The transformer stack shared by CLIP's text and vision towers (pre-norm blocks:
// LN → multi-head attention → residual, LN → MLP → residual).
import type { Params } from '../params.ts';
import type { TensorOps } from '../tensor-ops.ts';
import type { ClipEncoderConfig } from './clip-config.ts';

// x: (B, N, C) → (B, N, C). `segmented`: each layer runs as one ops.checkpoint segment where
// the backend has them, so a pass without gradients frees each layer's intermediates as it
// goes (CLIP-L vision: ~0.5 GB otherwise); used for the frozen vision tower.
export function clipEncoder<T>(ops: TensorOps<T>, p: Params<T>, c: ClipEncoderConfig, x: T, causal: boolean, segmented = false): T {
  const C = c.hidden_size;
  const I = c.intermediate_size;
  const ln = (q: Params<T>, name: string, h: T) =>
    ops.layerNorm(h, q.get(`${name}.weight`, [C]), q.get(`${name}.bias`, [C]), c.layer_norm_eps);
  const lin = (q: Params<T>, name: string, h: T, out: number, inp: number) =>
    ops.linear(h, q.get(`${name}.weight`, [out, inp]), q.get(`${name}.bias`, [out]));
  const layer = (l: Params<T>, x: T) => {
    // 1. self-attention (causal for text)
    const h = ln(l, 'layer_norm1', x);
    const a = l.sub('self_attn');
    const o = ops.attention(lin(a, 'q_proj', h, C, C), lin(a, 'k_proj', h, C, C), lin(a, 'v_proj', h, C, C), c.num_attention_heads, { causal });
    x = ops.add(x, lin(a, 'out_proj', o, C, C));
    // 2. MLP
    let m = lin(l.sub('mlp'), 'fc1', ln(l, 'layer_norm2', x), I, C);
    m = c.hidden_act === 'quick_gelu' ? ops.quickGelu(m) : ops.gelu(m);
    return ops.add(x, lin(l.sub('mlp'), 'fc2', m, C, I));
  };
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const l = p.sub(`layers.${i}`);
    x = segmented && ops.checkpoint ? ops.checkpoint((h) => layer(l, h), [x]) : layer(l, x);
  }
  return x;
}
