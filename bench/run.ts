// `likeness bench [kernels] [--quick] [--out file] [--only op,op] [--runs n]`: runs the
// benchmark suites, prints a table and writes JSON (default bench/results.json).
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { formatKernelTable, KERNEL_BENCH_OPS, runKernelBench } from './kernels.ts';
import { formatPipelineTable, runPipelineBench } from './pipeline.ts';

const SUITES = ['kernels', 'pipeline'] as const;

interface BenchArgs {
  suites: string[];
  quick: boolean;
  out: string;
  only: string[];
  runs?: number;
}

function parseArgs(argv: string[]): BenchArgs {
  const args: BenchArgs = { suites: [], quick: false, out: 'bench/results.json', only: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined || v === '') throw new Error(`bench: ${a} needs a value`);
      return v;
    };
    if (a === '--quick') args.quick = true;
    else if (a === '--out' || a.startsWith('--out=')) args.out = value();
    else if (a === '--only' || a.startsWith('--only=')) args.only.push(...value().split(',').filter(Boolean));
    else if (a === '--runs' || a.startsWith('--runs=')) {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 1) throw new Error(`bench: --runs wants a positive integer`);
      args.runs = n;
    } else if ((SUITES as readonly string[]).includes(a)) args.suites.push(a);
    else
      throw new Error(
        `bench: unknown argument '${a}' (suites: ${SUITES.join(', ')}; ops: ${KERNEL_BENCH_OPS.join(', ')})`,
      );
  }
  if (!args.suites.length) args.suites = [...SUITES];
  return args;
}

export async function runBench(argv: string[]): Promise<number> {
  // The scale suite has its own options and is never part of the default run (it takes
  // minutes to hours on a software adapter).
  if (argv[0] === 'scale') return (await import('./scale.ts')).scaleCommand(argv.slice(1));
  let args: BenchArgs;
  try {
    args = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    return 2;
  }
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const results: Record<string, unknown> = {};
  let failed = 0;
  if (args.suites.includes('kernels')) {
    const report = await runKernelBench({ quick: args.quick, only: args.only, runs: args.runs, log });
    process.stdout.write(`${formatKernelTable(report)}\n`);
    results.kernels = report;
    failed += report.rows.filter((r) => r.status === 'error').length;
  }
  if (args.suites.includes('pipeline')) {
    const report = await runPipelineBench({ runs: args.runs, log });
    process.stdout.write(`\n${formatPipelineTable(report)}\n`);
    results.pipeline = report;
  }
  const out = resolve(args.out);
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`wrote ${out}\n`);
  return failed ? 1 : 0;
}
