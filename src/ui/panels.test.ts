// What the worker-fed parts of the UI show, rendered to HTML in Node from store states the
// worker's progress callbacks produce (no browser, no worker: the store is set directly).
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { beforeEach, describe, expect, it } from 'vitest';
import { ConceptCard } from './concept-card.tsx';
import { DownloadProgressBar } from './download-progress.tsx';
import { GeneratePanel } from './generate-panel.tsx';
import { LibraryPanel } from './library-panel.tsx';
import { GpuStatus } from './gpu-status.tsx';
import { MessageArea } from './message-area.tsx';
import { workerNotice } from './messages.ts';
import { PersonalizePanel } from './personalize-panel.tsx';
import { useAppStore, type AppState } from './store/index.ts';

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

  it('a concept card offers the export for other tools and shows its blend-1 look', () => {
    const summary = {
      id: 'c1',
      name: 'Mug',
      placeholder: 'S*',
      nearestWords: ['cup'],
      packId: 'tiny',
      packHash: 'h'.repeat(64),
      createdAt: 0,
      updatedAt: 0,
      thumbnail: new Uint8Array(0),
      tensorBytes: 1000,
    };
    show({
      library: { ...initial.library, status: 'ready', concepts: [summary], exportFormat: 'a1111', blendOne: null },
    });
    const card = () => createElement(ConceptCard, { id: 'c1' });
    let out = html(card);
    expect(out).toMatch(/<option value="a1111" selected="">A1111 \/ ComfyUI<\/option>/);
    expect(text(out)).toMatch(/Export for other tools Blend-1 look/);
    expect(out).not.toContain('blend-one-preview');
    show({
      library: {
        ...initial.library,
        status: 'ready',
        concepts: [summary],
        blendOne: {
          id: 'c1',
          status: 'done',
          image: { width: 8, height: 8, rgba: new Uint8ClampedArray(256), seed: 0 },
        },
      },
    });
    out = html(card);
    expect(out).toContain('data-testid="blend-one-preview"');
    expect(text(out)).toMatch(/Blend 1: how diffusers, A1111 and ComfyUI apply this concept/);
  });

  it('the generate panel has the random-number setting', () => {
    show({ generate: { ...initial.generate, rng: 'torch' } });
    const out = html(GeneratePanel);
    expect(out).toMatch(/<option value="torch" selected="">PyTorch CPU generator<\/option>/);
    expect(text(out)).toContain('same noise as diffusers with torch.Generator(&quot;cpu&quot;).manual_seed(seed)');
  });

  it('the library lets the user pick the word for an imported LoRA', () => {
    show({ library: { ...initial.library, status: 'ready', importWord: 'sks' } });
    const out = html(LibraryPanel);
    expect(out).toMatch(/<input id="import-word" maxLength="64"[^>]* value="sks"/);
    expect(text(out)).toMatch(/a LoRA and\/or a textual-inversion embedding from diffusers, kohya, A1111 or ComfyUI/);
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
