import { useEffect } from 'react';
import { GpuStatus } from './gpu-status.tsx';
import { useAppStore } from './store.ts';

export function App() {
  const probeGpu = useAppStore((s) => s.probeGpu);
  useEffect(() => {
    void probeGpu();
  }, [probeGpu]);
  return (
    <main className="app">
      <header>
        <h1>Likeness</h1>
        <p className="tagline">Your thing, in any picture — from one photo, on your own GPU.</p>
      </header>
      <GpuStatus />
    </main>
  );
}
