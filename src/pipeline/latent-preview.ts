// Progressive previews without the VAE: Stable Diffusion 1.x latents map roughly linearly
// to RGB. The factors are the widely used least-squares fit for SD 1.x's VAE; on other
// VAEs (the tiny test pack) the preview is only indicative.
const LATENT_RGB = [
  [0.298, 0.207, 0.208],
  [0.187, 0.286, 0.173],
  [-0.158, 0.189, 0.264],
  [-0.184, -0.271, -0.473],
];

/** latent: (4, h, w) (unscaled by the VAE factor: the fit is for scaled latents) → RGBA8 (h, w). */
export function latentPreview(latent: Float32Array, h: number, w: number): Uint8ClampedArray {
  const n = h * w;
  const out = new Uint8ClampedArray(n * 4);
  const channels = Math.min(4, latent.length / n);
  for (let p = 0; p < n; p++) {
    for (let c = 0; c < 3; c++) {
      let v = 0;
      for (let k = 0; k < channels; k++) v += latent[k * n + p] * LATENT_RGB[k][c];
      out[p * 4 + c] = Math.round(((v + 1) / 2) * 255);
    }
    out[p * 4 + 3] = 255;
  }
  return out;
}

/** Planar (3, h, w) in [−1, 1] → RGBA8. */
export function pixelsToRgba(pixels: Float32Array, h: number, w: number): Uint8ClampedArray {
  const n = h * w;
  const out = new Uint8ClampedArray(n * 4);
  for (let p = 0; p < n; p++) {
    for (let c = 0; c < 3; c++) out[p * 4 + c] = Math.round(((pixels[c * n + p] + 1) / 2) * 255);
    out[p * 4 + 3] = 255;
  }
  return out;
}
