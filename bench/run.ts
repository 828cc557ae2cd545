// Placeholder entry replaced by the kernel benchmark (see bench/kernels.ts).
export async function runBench(_argv: string[]): Promise<number> {
  throw new Error('bench: not built yet');
}
