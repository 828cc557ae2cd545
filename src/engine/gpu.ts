// Acquiring a GPUDevice: in a page or worker through navigator.gpu, in Node through the
// `webgpu` package (Dawn). Everything above this file sees only `Gpu`.
import { InternalError } from '../domain/errors.ts';

export interface GpuInfo {
  /** Human-readable adapter name, e.g. "llvmpipe (Mesa 25.0.7) via Vulkan". */
  name: string;
  vendor: string;
  architecture: string;
  description: string;
  /** Where the device came from. */
  runtime: 'browser' | 'node';
  f16: boolean;
  subgroups: boolean;
  timestampQuery: boolean;
}

export interface Gpu {
  device: GPUDevice;
  info: GpuInfo;
}

export interface GpuOptions {
  /** Ask for `shader-f16` when the adapter has it (default true). */
  f16?: boolean;
  powerPreference?: GPUPowerPreference;
}

export class WebGpuUnavailableError extends InternalError {
  constructor(message: string) {
    super(message);
    this.name = 'WebGpuUnavailableError';
  }
}

// Node (even after onnxruntime-web installed a navigator.gpu there) vs a page or worker.
const isNode = (): boolean => typeof process !== 'undefined' && !!process.versions?.node;

async function getGpuObject(): Promise<{ gpu: GPU; runtime: 'browser' | 'node' }> {
  if (isNode()) {
    // A variable specifier keeps bundlers from pulling Node-only code into the web build.
    const nodeModule = './node-gpu.ts';
    const { nodeGpu } = (await import(/* @vite-ignore */ nodeModule)) as typeof import('./node-gpu.ts');
    return { gpu: await nodeGpu(), runtime: 'node' };
  }
  if (typeof navigator === 'undefined' || !('gpu' in navigator) || !navigator.gpu) {
    throw new WebGpuUnavailableError(
      'WebGPU is not available in this browser. Use a recent Chrome, Edge or Safari ' +
        '(Firefox: enable dom.webgpu.enabled), or check that hardware acceleration is on.',
    );
  }
  return { gpu: navigator.gpu, runtime: 'browser' };
}

export async function requestGpu(options: GpuOptions = {}): Promise<Gpu> {
  const { gpu, runtime } = await getGpuObject();
  const adapter = await gpu.requestAdapter({
    powerPreference: options.powerPreference ?? 'high-performance',
  });
  if (!adapter) {
    throw new WebGpuUnavailableError('No WebGPU adapter was found. The GPU may be blocklisted or its driver missing.');
  }
  const wantF16 = (options.f16 ?? true) && adapter.features.has('shader-f16');
  const requiredFeatures: GPUFeatureName[] = [];
  if (wantF16) requiredFeatures.push('shader-f16');
  if (adapter.features.has('subgroups')) requiredFeatures.push('subgroups');
  if (adapter.features.has('timestamp-query')) requiredFeatures.push('timestamp-query');
  // Ask for the adapter's real limits: the defaults (128 MiB bindings) are too small for UNets.
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxBufferSize: l.maxBufferSize,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    },
  });
  const ai = adapter.info;
  const info: GpuInfo = {
    name: [ai.description || ai.device || ai.architecture || 'unknown adapter', ai.vendor && `(${ai.vendor})`]
      .filter(Boolean)
      .join(' '),
    vendor: ai.vendor,
    architecture: ai.architecture,
    description: ai.description,
    runtime,
    f16: device.features.has('shader-f16'),
    subgroups: device.features.has('subgroups'),
    timestampQuery: device.features.has('timestamp-query'),
  };
  return { device, info };
}
