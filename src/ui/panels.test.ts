// What the worker-fed parts of the UI show, rendered to HTML in Node from store states the
// worker's progress callbacks produce (no browser, no worker: the store is set directly).
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { beforeEach, describe, expect, it } from 'vitest';
import { DownloadProgressBar } from './download-progress.tsx';
import { GpuStatus } from './gpu-status.tsx';
import { MessageArea } from './message-area.tsx';
import { workerNotice } from './messages.ts';
import { PersonalizePanel } from './personalize-panel.tsx';
import { useAppStore, type AppState } from './store.ts';

// Server rendering reads zustand's initial-state object (useSyncExternalStore's server
// snapshot), so the states under test are written into that object and restored after.
const initial = useAppStore.getInitialState();
const pristine = { ...initial };
const show = (patch: Partial<AppState>) => Object.assign(initial, patch);
const html = (c: () => unknown) => renderToStaticMarkup(createElement(c as () => null));
const text = (markup: string) =>
  markup
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();

beforeEach(() => {
  Object.assign(initial, pristine);
});

describe('worker-fed panels', () => {
  it('the download bar shows bytes, rate, time left and a cancel button', () => {
    show({
      pack: {
        ...initial.pack,
        status: 'running',
        progress: {
          file: 'unet.safetensors',
          loadedBytes: 150 * 1024 * 1024,
          totalBytes: 600 * 1024 * 1024,
          bytesPerSecond: 5 * 1024 * 1024,
          etaSeconds: 90,
        },
      },
    });
    const out = html(DownloadProgressBar);
    expect(text(out)).toBe('Downloading unet.safetensors 150 MB of 600 MB 5.0 MB/s about 2 min left Cancel download');
    expect(out).toMatch(/<progress id="download-bar" max="629145600" value="157286400">/);
    show({ pack: { ...initial.pack, status: 'cancelled' } });
    expect(text(html(DownloadProgressBar))).toMatch(/^Download cancelled\./);
  });

  it('personalizing shows the step, the nearest words and the loss curve', () => {
    show({
      pack: { ...initial.pack, status: 'done' },
      personalize: {
        ...initial.personalize,
        status: 'running',
        stage: 'tuning',
        step: 3,
        totalSteps: 12,
        nearest: ['tabby', 'kitten', 'cat'],
        losses: [0.4, 0.3, 0.25],
      },
    });
    const out = html(PersonalizePanel);
    expect(text(out)).toContain('Tuning — step 3 of 12');
    expect(text(out)).toContain('near: tabby, kitten, cat');
    expect(text(out)).toContain('Loss after step 3 of 12: 0.250 (first 0.400).');
    expect(out).toContain('data-testid="personalize-cancel"');
    expect(out.match(/<circle /g)).toHaveLength(3);
    expect(out).toMatch(/<path class="curve" d="M40.0,10.0 L64.5,[\d.]+ L89.1,116.0"/);
  });

  it('worker errors appear with their kind, message and advice', () => {
    show({
      notices: [
        {
          id: 1,
          ...workerNotice('generate', 'generating', {
            kind: 'out-of-memory',
            message: 'Buffer of 2.1 GB exceeds maxBufferSize 1 GB',
          }),
        },
      ],
    });
    const out = html(MessageArea);
    expect(out).toContain('role="alert"');
    expect(out).toContain('data-kind="out-of-memory"');
    expect(text(out)).toContain(
      'Generate: The GPU ran out of memory (generating) Buffer of 2.1 GB exceeds maxBufferSize 1 GB Lower the batch size',
    );
  });

  it('a missing WebGPU is explained, with what to do', () => {
    show({ gpu: { status: 'done', report: { ok: false, error: 'No WebGPU adapter was found.' } } });
    expect(text(html(GpuStatus))).toBe(
      'WebGPU unavailable: No WebGPU adapter was found. Likeness runs on your GPU: personalizing and generating both need WebGPU (the prompt and image models run on it even when ONNX Runtime runs the UNet). Use a recent Chrome, Edge or Safari with hardware acceleration on; your concept library stays available for export meanwhile.',
    );
  });

  it('the capability report shows the buffer and storage binding limits', () => {
    const info = {
      name: 'llvmpipe',
      vendor: 'mesa',
      architecture: '',
      description: 'llvmpipe',
      runtime: 'browser' as const,
      f16: true,
      subgroups: false,
      timestampQuery: false,
    };
    show({
      gpu: {
        status: 'done',
        report: { ok: true, info, limits: { maxBufferSize: 2 ** 32 - 1, maxStorageBufferBindingSize: 2 ** 27 } },
      },
    });
    const out = text(html(GpuStatus));
    expect(out).toContain('largest buffer 4.0 GB');
    expect(out).toContain('largest storage binding 128 MB (bigger tensors are processed in parts)');
  });
});
