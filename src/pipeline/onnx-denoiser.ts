// The denoiser on onnxruntime-web: the pack's `unet` graph, or `unet_personalized` (dual
// path + LoRA inputs) when a concept is applied. Prompts are still encoded by the engine's
// text encoder (cheap, and it is where v* is spliced); ORT runs the UNet, which is where
// the sampling time goes. ORT shares the engine's GPUDevice where it can.
import { checkOnnxExternalData } from '../onnx/onnx-external-check.ts';
import { OrtSession, type OrtArray } from '../onnx/ort.ts';
import type { ConceptData } from '../domain/types.ts';
import type { Denoiser } from './denoiser.ts';
import type { PackRuntime } from './pack-runtime.ts';

const sessions = new WeakMap<PackRuntime, Map<string, Promise<OrtSession>>>();

// The two UNet graphs read the same weights file, but onnxruntime-web cannot share
// initializers between sessions: each session holds its own copy of the UNet's weights
// (1.7 GB fp16 for SD 1.5; wasm memory tops out at 4 GiB). So at most one of them is alive
// per runtime: switching between plain and personalized generation releases the other and
// loads this one (seconds, once per switch). The weights bytes are read for the session's
// creation only and not kept afterwards. The engine runtime has no such limit: its UNet
// weights are uploaded once and serve both paths. Generations run one at a time (the
// worker's GPU mutex, the CLI's loop), so a released session is never still running.
const UNET_GRAPHS = new Set(['unet', 'unet_personalized']);

/** Graphs with a live (or loading) ORT session for this runtime (tests, diagnostics). */
export function liveOnnxGraphs(rt: PackRuntime): string[] {
  return [...(sessions.get(rt)?.keys() ?? [])];
}

async function session(rt: PackRuntime, graph: string): Promise<OrtSession> {
  let byGraph = sessions.get(rt);
  if (!byGraph) sessions.set(rt, (byGraph = new Map()));
  let s = byGraph.get(graph);
  if (!s) {
    const file = rt.manifest.files.find((f) => f.role === 'onnx' && f.graph === graph);
    if (!file)
      throw new Error(`pack "${rt.manifest.name}" has no ONNX graph "${graph}" (rebuild it without --no-graphs)`);
    const others = UNET_GRAPHS.has(graph) ? [...byGraph].filter(([g]) => g !== graph && UNET_GRAPHS.has(g)) : [];
    for (const [g] of others) byGraph.delete(g);
    s = (async () => {
      for (const [, other] of others) await other.then((o) => o.release()).catch(() => undefined);
      const model = await rt.pack.read(file.path);
      // A range outside the weights is named here, not as onnxruntime's internal error.
      const sizes = new Map(
        rt.manifest.files.filter((f) => file.externalData?.includes(f.path)).map((f) => [f.path, f.bytes]),
      );
      checkOnnxExternalData(file.path, model, sizes);
      const externalData = await Promise.all(
        (file.externalData ?? []).map(async (path) => ({ path, data: await rt.pack.read(path) })),
      );
      return OrtSession.create(model, { backend: 'auto', device: rt.engine.device, externalData });
    })();
    byGraph.set(graph, s);
  }
  return s;
}

/** contexts: [uncond, cond, hard] as (1, 77, C) arrays (hard = cond without a concept). */
export async function onnxDenoiser(
  rt: PackRuntime,
  contexts: { uncond: Float32Array; cond: Float32Array; hard: Float32Array },
  concept: ConceptData | null,
  blend: number,
): Promise<Denoiser> {
  const s = await session(rt, concept ? 'unet_personalized' : 'unet');
  const C = rt.tokenDim;
  const ctx = (data: Float32Array): OrtArray => ({ data, dims: [1, data.length / C, C] });
  const lora: Record<string, OrtArray> = {};
  for (const l of concept?.lora ?? []) {
    lora[`lora.${l.module}.A`] = { data: l.A, dims: l.aShape };
    lora[`lora.${l.module}.B`] = { data: l.B, dims: l.bShape };
  }
  const run = async (x: Float32Array, shape: number[], t: number, context: Float32Array, hard: Float32Array) => {
    const feeds: Record<string, OrtArray> = {
      sample: { data: x, dims: shape },
      timestep: { data: Float32Array.of(t), dims: [1] },
      encoder_hidden_states: ctx(context),
    };
    if (concept)
      Object.assign(
        feeds,
        { hard_encoder_hidden_states: ctx(hard), blend: { data: Float32Array.of(blend), dims: [1] } },
        lora,
      );
    const out = await s.run(feeds);
    return out.noise_pred.data;
  };
  return {
    backend: `onnxruntime-web (${s.backend})`,
    async predict(x, shape, t) {
      // The uncond branch sees the negative prompt on both paths.
      const eu = await run(x, shape, t, contexts.uncond, contexts.uncond);
      const ec = await run(x, shape, t, contexts.cond, contexts.hard);
      return [eu, ec];
    },
    dispose() {},
  };
}
