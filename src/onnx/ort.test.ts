// ORT's WebGPU EP in Node (dawn.node, software Vulkan here) against its wasm EP and a CPU
// computation; and ORT on the engine's own GPUDevice, reading the engine's buffers.
import { describe, expect, it } from 'vitest';
import { testEngine } from '../../test/engine.ts';
import { assertClose } from '../../test/close.ts';
import { rng } from '../../test/random.ts';
import { attrInt, attrInts, encodeModel, floatInitializer, type OnnxModel } from './onnx-proto.ts';
import { OrtSession, ortWebGpuAvailable } from './ort.ts';

// x: (1, 4, 6, 5) → Conv 3×3 pad 1 → (1, 3, 6, 5) → Softmax over the last axis, then a
// MatMul against a second input: several kinds of WebGPU kernels in one graph.
function model(weights: Float32Array, bias: Float32Array): OnnxModel {
  return {
    graph: {
      nodes: [
        {
          opType: 'Conv',
          inputs: ['x', 'w', 'b'],
          outputs: ['c'],
          attributes: { kernel_shape: attrInts([3, 3]), pads: attrInts([1, 1, 1, 1]) },
        },
        { opType: 'Softmax', inputs: ['c'], outputs: ['s'], attributes: { axis: attrInt(-1) } },
        { opType: 'MatMul', inputs: ['s', 'm'], outputs: ['y'] },
      ],
      inputs: [
        { name: 'x', shape: [1, 4, 6, 5] },
        { name: 'm', shape: [5, 7] },
      ],
      outputs: [{ name: 'y', shape: [1, 3, 6, 7] }],
      initializers: [floatInitializer('w', [3, 4, 3, 3], weights), floatInitializer('b', [3], bias)],
    },
  };
}

function data() {
  const r = rng(11);
  return { x: r.normals(4 * 6 * 5), m: r.normals(5 * 7), w: r.normals(3 * 4 * 9, 0.4), b: r.normals(3) };
}

describe('ort session wrapper', () => {
  it('WebGPU EP runs in Node and matches the wasm EP', async () => {
    expect(await ortWebGpuAvailable()).toBe(true);
    const d = data();
    const bytes = encodeModel(model(d.w, d.b));
    const feeds = { x: { data: d.x, dims: [1, 4, 6, 5] }, m: { data: d.m, dims: [5, 7] } };
    const gpu = await OrtSession.create(bytes, { backend: 'webgpu', gpuOnly: true });
    const cpu = await OrtSession.create(bytes, { backend: 'wasm' });
    try {
      expect(gpu.backend).toBe('webgpu');
      expect(cpu.backend).toBe('wasm');
      expect(gpu.inputNames).toEqual(['x', 'm']);
      const [g, c] = [await gpu.run(feeds), await cpu.run(feeds)];
      expect(g.y.dims).toEqual([1, 3, 6, 7]);
      // fp32 on both sides, different summation orders and exp implementations.
      assertClose(g.y.data, c.y.data, { rtol: 1e-5, atol: 1e-6 }, 'webgpu vs wasm');
    } finally {
      await gpu.release();
      await cpu.release();
    }
  });

  it("runs on the engine's GPUDevice and reads the engine's buffers without copies", async () => {
    const e = await testEngine();
    const d = data();
    const bytes = encodeModel(model(d.w, d.b));
    const cpu = await OrtSession.create(bytes, { backend: 'wasm' });
    const expected = (await cpu.run({ x: { data: d.x, dims: [1, 4, 6, 5] }, m: { data: d.m, dims: [5, 7] } })).y.data;
    await cpu.release();

    const session = await OrtSession.create(bytes, {
      backend: 'webgpu',
      device: e.device,
      outputsOnGpu: true,
      gpuOnly: true,
    });
    expect(session.backend).toBe('webgpu');
    await e.scopeAsync(async () => {
      const x = e.tensor(d.x, [1, 4, 6, 5]);
      const m = e.tensor(d.m, [5, 7]);
      const out = await session.runGpu({
        x: { buffer: x.buffer, dims: x.shape },
        m: { buffer: m.buffer, dims: m.shape },
      });
      expect(out.y.dims).toEqual([1, 3, 6, 7]);
      // Read ORT's output buffer through the engine's queue: proves the device is shared.
      const y = e.empty([1, 3, 6, 7]);
      await e.sync();
      const enc = e.device.createCommandEncoder();
      enc.copyBufferToBuffer(out.y.buffer, 0, y.buffer, 0, y.byteLength);
      e.device.queue.submit([enc.finish()]);
      assertClose(await y.read(), expected, { rtol: 1e-5, atol: 1e-6 }, 'shared-device webgpu vs wasm');
      out.y.dispose();
    });
    await session.release();
    await e.sync(); // the engine's device is still healthy after ORT used it
  });

  it("'auto' picks WebGPU here, and an unknown op fails cleanly under gpuOnly", async () => {
    const d = data();
    const auto = await OrtSession.create(encodeModel(model(d.w, d.b)), {});
    expect(auto.backend).toBe('webgpu');
    expect(auto.fallbackReason).toBeNull();
    await auto.release();
    const bogus = encodeModel({
      graph: {
        nodes: [{ opType: 'NoSuchOp', inputs: ['x'], outputs: ['y'] }],
        inputs: [{ name: 'x', shape: [2] }],
        outputs: [{ name: 'y', shape: [2] }],
      },
    });
    await expect(OrtSession.create(bogus, { backend: 'webgpu' })).rejects.toThrow();
  });
});
