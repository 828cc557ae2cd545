// Memory handed back between phases: the pool's free lists, and the deferred vision tower.
import { describe, expect, it } from 'vitest';
import { testEngine } from '../../test/engine.ts';
import { loadTinyPack } from '../../test/tiny-pack.ts';
import { clipVision } from '../models/clip/clip-vision.ts';
import { PackRuntime } from './pack-runtime.ts';
import { releaseFreeBuffers } from './release-memory.ts';

describe('releasing memory between phases', () => {
  it('releaseFreeBuffers destroys the free lists after pending work, live tensors untouched', async () => {
    const e = await testEngine();
    const kept = e.keep(e.full([4096], 3));
    e.scope(() => {
      // released into the free lists while their commands are still unsubmitted
      for (let i = 0; i < 4; i++) e.full([1000 + i * 300], 1);
    });
    expect(e.pool.getStats().freeBytes).toBeGreaterThan(0);
    const live = e.pool.getStats().liveBytes;
    await releaseFreeBuffers(e);
    expect(e.pool.getStats().freeBytes).toBe(0);
    expect(e.pool.getStats().liveBytes).toBe(live);
    expect(Array.from(await kept.read()).every((v) => v === 3)).toBe(true);
    kept.dispose();
  });

  it('a deferred vision tower is freed by releaseImageEncoder and comes back unchanged', async () => {
    const engine = await testEngine();
    const rt = await PackRuntime.open(engine, await loadTinyPack(), { deferImageEncoder: true });
    try {
      const c = rt.vision.config;
      const embeds = () =>
        engine.noGrad(() =>
          engine.scopeAsync(async () =>
            clipVision(
              rt.ops,
              rt.vision.params,
              c,
              engine.full([1, 3, c.image_size, c.image_size], 0.2),
            ).imageEmbeds.read(),
          ),
        );
      const without = rt.residentBytes;
      await rt.ensureImageEncoder();
      const withVision = rt.residentBytes;
      expect(withVision).toBeGreaterThan(without);
      const first = await embeds();
      rt.releaseImageEncoder();
      expect(rt.residentBytes).toBe(without);
      expect(() => rt.vision.params.get('visual_projection.weight', [c.projection_dim, c.hidden_size])).toThrow(
        /ensureImageEncoder/,
      );
      await rt.ensureImageEncoder();
      expect(rt.residentBytes).toBe(withVision);
      expect(await embeds()).toEqual(first);
    } finally {
      rt.dispose();
    }
  });

  it('releaseImageEncoder leaves a tower that open() uploaded alone', async () => {
    const engine = await testEngine();
    const rt = await PackRuntime.open(engine, await loadTinyPack());
    try {
      await rt.ensureImageEncoder();
      const bytes = rt.residentBytes;
      rt.releaseImageEncoder();
      expect(rt.residentBytes).toBe(bytes);
    } finally {
      rt.dispose();
    }
  });
});
