import { useAppStore } from './store.ts';

export function GpuStatus() {
  const gpu = useAppStore((s) => s.gpu);
  if (gpu.status === 'probing') {
    return (
      <p role="status" data-testid="gpu-status">
        Looking for a WebGPU adapter…
      </p>
    );
  }
  const { report } = gpu;
  if (!report.ok) {
    return (
      <p role="alert" className="error" data-testid="gpu-status">
        WebGPU unavailable: {report.error}
      </p>
    );
  }
  return (
    <p role="status" data-testid="gpu-status">
      GPU: <strong data-testid="gpu-name">{report.info.name}</strong>
      {report.info.f16 ? ' · fp16 available' : ' · fp32 only (no shader-f16)'}
    </p>
  );
}
