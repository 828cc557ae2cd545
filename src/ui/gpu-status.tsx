import { formatBytes } from './format.ts';
import { useAppStore } from './store/index.ts';

/** What this device can do, and what Likeness falls back to where it cannot. */
export function GpuStatus() {
  const gpu = useAppStore((s) => s.gpu);
  if (gpu.status === 'probing') {
    return (
      <p role="status" className="gpu-status" data-testid="gpu-status">
        Looking for a WebGPU adapter…
      </p>
    );
  }
  const { report } = gpu;
  if (!report.ok) {
    return (
      <div role="alert" className="gpu-status gpu-missing" data-testid="gpu-status">
        <p>
          <strong>WebGPU unavailable:</strong> {report.error}
        </p>
        <p className="gpu-fallback" data-testid="gpu-fallback">
          Likeness runs on your GPU: personalizing and generating both need WebGPU (the prompt and image models run on
          it even when ONNX Runtime runs the UNet). Use a recent Chrome, Edge or Safari with hardware acceleration on;
          your concept library stays available for export meanwhile.
        </p>
      </div>
    );
  }
  const { info, limits } = report;
  return (
    <div role="status" className="gpu-status" data-testid="gpu-status">
      <p>
        GPU: <strong data-testid="gpu-name">{info.name}</strong>
      </p>
      <ul className="capabilities" aria-label="GPU capabilities">
        <li data-testid="cap-f16" className={info.f16 ? 'cap-yes' : 'cap-no'}>
          {info.f16
            ? 'fp16 shaders: fp16 packs run with fp16 activations (half the activation memory)'
            : 'no fp16 shaders — fp16 weights are unpacked in the shader, activations stay fp32 (more memory)'}
        </li>
        <li className={info.subgroups ? 'cap-yes' : 'cap-no'}>{info.subgroups ? 'subgroups' : 'no subgroups'}</li>
        <li data-testid="cap-max-buffer">largest buffer {formatBytes(limits.maxBufferSize)}</li>
        <li data-testid="cap-max-binding">
          largest storage binding {formatBytes(limits.maxStorageBufferBindingSize)} (bigger tensors are processed in
          parts)
        </li>
      </ul>
    </div>
  );
}
