import { formatBytes } from './format.ts';
import { useAppStore } from './store.ts';

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
          Fallback: images can still be generated on the CPU with onnxruntime’s WebAssembly backend (fp32, much slower).
          Personalizing a concept needs WebGPU.
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
          {info.f16 ? 'fp16 shaders' : 'no fp16 shaders — running in fp32 (about twice the memory, slower)'}
        </li>
        <li className={info.subgroups ? 'cap-yes' : 'cap-no'}>{info.subgroups ? 'subgroups' : 'no subgroups'}</li>
        <li>largest buffer {formatBytes(limits.maxBufferSize)}</li>
      </ul>
    </div>
  );
}
