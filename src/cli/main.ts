// `likeness <command>`: the Node CLI over the same engine the browser worker uses.
import { Engine } from '../engine/engine.ts';

export const HELP = `likeness — personalize a text-to-image model from one photo, on WebGPU

Usage:
  likeness <command> [options]

Commands:
  gpu                     Acquire the WebGPU adapter and print what it offers.
  bench [kernels]         Run the kernel benchmark: engine vs onnxruntime-web (WebGPU EP)
                          on the same adapter; prints a table, writes bench/results.json.
  help                    Show this text.

Options for bench:
  --quick                 Smaller shapes (smoke run, e.g. on a software adapter).
  --out <file>            Where to write the JSON (default bench/results.json).
  --only <op,op>          Run only these benchmarks: matmul, conv2d, attention-self,
                          attention-cross, group-norm, layer-norm, silu.
  --runs <n>              Timed samples per measurement (default 5; --quick 3).

Environment:
  LIKENESS_VULKAN=lavapipe|swiftshader   Choose the software Vulkan driver in Node
                                         (default: lavapipe when Mesa ≥ 25 is installed).
`;

export async function main(argv: string[]): Promise<number> {
  const [command = 'help', ...rest] = argv;
  switch (command) {
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return 0;
    case 'gpu': {
      const engine = await Engine.create();
      const { info } = engine;
      process.stdout.write(
        `adapter: ${info.name}\nruntime: ${info.runtime}\nshader-f16: ${info.f16}\nsubgroups: ${info.subgroups}\n` +
          `maxBufferSize: ${engine.device.limits.maxBufferSize}\n`,
      );
      engine.destroy();
      return 0;
    }
    case 'bench': {
      const { runBench } = await import('../../bench/run.ts');
      return runBench(rest);
    }
    default:
      process.stderr.write(`likeness: unknown command '${command}'\n\n${HELP}`);
      return 2;
  }
}
