import { describe, expect, it } from 'vitest';
import { DeviceLostError } from '../engine/engine.ts';
import type { LoadedPack } from '../packs/pack-loader.ts';
import { RuntimeHost } from './runtime-host.ts';

class FakeEngine {
  isLost = false;
  destroyed = false;
  constructor(readonly id: number) {}
  destroy() {
    this.destroyed = true;
  }
}

class FakeRuntime {
  disposed = false;
  constructor(
    readonly engine: FakeEngine,
    readonly pack: LoadedPack,
  ) {}
  dispose() {
    this.disposed = true;
  }
}

const pack = (name: string) => ({ manifest: { name } }) as unknown as LoadedPack;

function host() {
  let engines = 0;
  const opened: FakeRuntime[] = [];
  const h = new RuntimeHost<FakeEngine, FakeRuntime>(
    async () => new FakeEngine(++engines),
    async (e, p) => {
      const rt = new FakeRuntime(e, p);
      opened.push(rt);
      return rt;
    },
  );
  return { h, opened, engines: () => engines };
}

describe('RuntimeHost', () => {
  it('opens one runtime per (engine, pack), once even for concurrent callers', async () => {
    const { h, opened } = host();
    await expect(h.runtime()).rejects.toThrow(/No model is loaded/);
    const p = pack('tiny');
    h.setPack(p);
    const [a, b] = await Promise.all([h.runtime(), h.runtime()]);
    expect(a).toBe(b);
    expect(opened).toHaveLength(1);
    expect(a.pack).toBe(p);
  });

  it('after a device loss: drops engine and runtime, and re-creates both from the same pack on the next call', async () => {
    const { h, opened, engines } = host();
    h.setPack(pack('tiny'));
    const first = await h.runtime();
    first.engine.isLost = true;
    const second = await h.runtime();
    expect(engines()).toBe(2);
    expect(second.engine).not.toBe(first.engine);
    expect(second.pack).toBe(first.pack);
    expect([first.disposed, first.engine.destroyed]).toEqual([true, true]);
    expect(opened).toHaveLength(2);
    expect(h.recoveries).toBe(1);
  });

  it('recoverFrom drops the engine for a DeviceLostError (or a lost engine), not for other errors', async () => {
    const { h, engines } = host();
    h.setPack(pack('tiny'));
    const rt = await h.runtime();
    expect(h.recoverFrom(new RangeError('bad'))).toBe(false);
    expect(await h.runtime()).toBe(rt);
    const lost = new DeviceLostError('destroyed: gone');
    expect(h.recoverFrom(lost)).toBe(true);
    expect(rt.disposed).toBe(true);
    const again = await h.runtime();
    expect(again).not.toBe(rt);
    expect(engines()).toBe(2);
  });

  it('a failed engine creation is retried on the next call', async () => {
    let fail = true;
    const h = new RuntimeHost<FakeEngine, FakeRuntime>(
      async () => {
        if (fail) throw new Error('no adapter');
        return new FakeEngine(1);
      },
      async (e, p) => new FakeRuntime(e, p),
    );
    await expect(h.engine()).rejects.toThrow('no adapter');
    fail = false;
    await expect(h.engine()).resolves.toBeInstanceOf(FakeEngine);
  });

  it('a new pack replaces the old runtime; adopt() takes a runtime opened outside', async () => {
    const { h } = host();
    h.setPack(pack('a'));
    const a = await h.runtime();
    h.setPack(pack('b'));
    expect(a.disposed).toBe(true);
    const b = await h.runtime();
    expect(b.pack.manifest.name).toBe('b');
    const c = new FakeRuntime(b.engine, pack('c'));
    h.adopt(c.pack, c);
    expect(b.disposed).toBe(true);
    expect(await h.runtime()).toBe(c);
  });

  it('a runtime that finishes opening after its pack was replaced is freed, not used', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const made: FakeRuntime[] = [];
    const h = new RuntimeHost<FakeEngine, FakeRuntime>(
      async () => new FakeEngine(1),
      async (e, p) => {
        if (p.manifest.name === 'slow') await gate;
        const rt = new FakeRuntime(e, p);
        made.push(rt);
        return rt;
      },
    );
    h.setPack(pack('slow'));
    const pending = h.runtime();
    await new Promise((r) => setTimeout(r, 5));
    h.setPack(pack('fast'));
    release();
    const rt = await pending;
    expect(rt.pack.manifest.name).toBe('fast');
    expect(made.find((m) => m.pack.manifest.name === 'slow')?.disposed).toBe(true);
  });
});
