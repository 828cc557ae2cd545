// The nearest-neighbour contrastive loss of the paper (Eq. 2) as a differentiable op:
//   L = mean_b −log( Σ_k e^{v_b·P_bk/τ} / (Σ_k e^{v_b·P_bk/τ} + Σ_{b'≠b} e^{v_b·v_b'/τ}) )
// v: (B, C) the predicted embeddings v*, P: (B, K, C) each one's K nearest vocabulary
// embeddings N(v*) (chosen by cosine similarity outside this op: a selection has no gradient),
// τ the temperature. Negatives are the other rows of v, so every v_b also gets gradient as a
// negative of the others. Returns a tensor of shape [1].
//
// v is NOT normalised: the logits are raw dot products, as the paper writes (v*·T_i). The
// paper pairs this loss with "an L2-regularization term to prevent the norm of the embedding
// from increasing significantly", which is only needed because raw dot products reward a
// growing ‖v*‖ — with cosine logits the norm would be invisible to the loss. The text encoder
// consumes the raw v* too, so its scale is part of what is learnt (and what the L2 bounds).
// Callers that want cosine logits can normalise v and P before calling.
import type { Tensor } from '../../engine/tensor.ts';
import { contrastiveBackward, contrastiveForward } from './contrastive-loss-kernels.ts';

export function contrastiveLoss(v: Tensor, P: Tensor, tau: number): Tensor {
  const e = v.engine;
  const { loss, logits, stats } = contrastiveForward(e, v, P, tau);
  e.record('contrastiveLoss', [v, P], loss, [v, P, logits, stats], (dL) =>
    contrastiveBackward(e, v, P, logits, stats, dL, tau, [v.requiresGrad, P.requiresGrad]),
  );
  // The tape holds their storage when it recorded a node; otherwise they are done.
  logits.dispose();
  stats.dispose();
  return loss;
}
