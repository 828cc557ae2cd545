// CPU reference (plain loops, float64): the ground truth the WGSL kernels are tested against.
// Nearest-neighbour 2×: y[b,c,oy,ox] = x[b,c,⌊oy/2⌋,⌊ox/2⌋]; the gradient of each input pixel
// is the sum over the 2×2 block it was copied to.

// x: (B, C, H, W) as planes = B·C → y: (B, C, 2H, 2W)
export function upsampleNearest2xForwardRef(x: ArrayLike<number>, planes: number, H: number, W: number): Float64Array {
  const y = new Float64Array(planes * 4 * H * W);
  for (let pl = 0; pl < planes; pl++)
    for (let oy = 0; oy < 2 * H; oy++)
      for (let ox = 0; ox < 2 * W; ox++) {
        y[(pl * 2 * H + oy) * 2 * W + ox] = x[(pl * H + Math.floor(oy / 2)) * W + Math.floor(ox / 2)];
      }
  return y;
}

// dY: (B, C, 2H, 2W) → dX: (B, C, H, W). Scatter-add (the GPU kernel gathers).
export function upsampleNearest2xBackwardRef(
  dY: ArrayLike<number>,
  planes: number,
  H: number,
  W: number,
): Float64Array {
  const dX = new Float64Array(planes * H * W);
  for (let pl = 0; pl < planes; pl++)
    for (let oy = 0; oy < 2 * H; oy++)
      for (let ox = 0; ox < 2 * W; ox++) {
        dX[(pl * H + (oy >> 1)) * W + (ox >> 1)] += dY[(pl * 2 * H + oy) * 2 * W + ox];
      }
  return dX;
}
