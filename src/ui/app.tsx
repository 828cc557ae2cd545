import { useEffect } from 'react';
import { GeneratePanel } from './generate-panel.tsx';
import { GpuStatus } from './gpu-status.tsx';
import { LibraryPanel } from './library-panel.tsx';
import { MessageArea } from './message-area.tsx';
import { PackPanel } from './pack-panel.tsx';
import { PersonalizePanel } from './personalize-panel.tsx';
import { PhotoPanel } from './photo-panel.tsx';
import { StepNav } from './step-nav.tsx';
import { useAppStore } from './store/index.ts';
import { installTestApi } from './test-api.ts';

export function App() {
  const step = useAppStore((s) => s.step);
  const probeGpu = useAppStore((s) => s.probeGpu);
  const initLibrary = useAppStore((s) => s.initLibrary);
  const choosePhoto = useAppStore((s) => s.choosePhoto);
  const goTo = useAppStore((s) => s.goTo);

  useEffect(() => {
    installTestApi();
    void probeGpu();
    void initLibrary();
  }, [probeGpu, initLibrary]);

  // Paste an image anywhere (text pastes into fields are left alone).
  useEffect(() => {
    const onPaste = (e: ClipboardEvent) => {
      const file = [...(e.clipboardData?.files ?? [])][0];
      if (!file) return;
      e.preventDefault();
      goTo('photo');
      void choosePhoto(file);
    };
    document.addEventListener('paste', onPaste);
    return () => document.removeEventListener('paste', onPaste);
  }, [choosePhoto, goTo]);

  return (
    <div className="app">
      <a className="skip-link" href="#main">
        Skip to the current step
      </a>
      <header className="app-header">
        <div>
          <h1>Likeness</h1>
          <p className="tagline">Your thing, in any picture — from one photo, on your own GPU.</p>
        </div>
        <GpuStatus />
      </header>
      <StepNav />
      <MessageArea />
      <main id="main" tabIndex={-1}>
        {step === 'pack' && <PackPanel />}
        {step === 'photo' && <PhotoPanel />}
        {step === 'personalize' && <PersonalizePanel />}
        {step === 'generate' && <GeneratePanel />}
        {step === 'library' && <LibraryPanel />}
      </main>
    </div>
  );
}
