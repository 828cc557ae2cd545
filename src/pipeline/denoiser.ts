// What the sampling loop needs from a UNet runtime (the engine or onnxruntime-web).
export interface Denoiser {
  /** Which runtime runs the UNet, for logs and benchmarks. */
  readonly backend: string;
  /** x: (1, L, h, w) at timestep t → [ε for the negative prompt, ε for the prompt]. */
  predict(x: Float32Array, shape: number[], t: number): Promise<[Float32Array, Float32Array]>;
  dispose(): void;
}
