// The CLI's way into the session core: a pack folder loaded into a session on a fresh engine,
// in-process. The app reaches the same core through the worker (worker/worker-api.ts).
import { Engine } from '../engine/engine.ts';
import { decodeImage } from '../image/decode-node.ts';
import { loadPackFromFolder } from '../packs/pack-node.ts';
import { PackRuntime, type PackRuntimeOptions } from '../pipeline/pack-runtime.ts';
import { createSession, type Session } from '../session/session.ts';

export interface CliSession {
  session: Session;
  rt: PackRuntime;
  /** Frees the runtime's GPU memory and the engine. */
  close(): void;
}

export async function openCliSession(
  packDir: string,
  options: PackRuntimeOptions,
  log: (s: string) => void,
): Promise<CliSession> {
  const pack = await loadPackFromFolder(packDir);
  const session = createSession({
    createEngine: () => Engine.create(),
    openRuntime: (engine, p) => PackRuntime.open(engine, p, options),
    // decode-node sniffs the format from the bytes; the MIME type is the browser's concern.
    decodeImage: (bytes) => decodeImage(bytes),
  });
  // Created first so that a missing adapter fails with its own message.
  const engine = await session.host.engine();
  log(`adapter: ${engine.info.name}`);
  try {
    const rt = await session.loadPack(pack);
    if (!rt) throw new Error('the GPU engine could not be created');
    return { session, rt, close: () => session.host.dropEngine() };
  } catch (e) {
    session.host.dropEngine();
    throw e;
  }
}
