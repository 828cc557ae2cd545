// The CLI's way into the session core: a pack folder opened on a fresh engine, in-process.
// The app reaches the same core through the worker (worker/worker-api.ts).
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
  const engine = await Engine.create();
  log(`adapter: ${engine.info.name}`);
  let rt: PackRuntime;
  try {
    rt = await PackRuntime.open(engine, pack, options);
  } catch (e) {
    engine.destroy();
    throw e;
  }
  const runtime = rt;
  // decode-node sniffs the format from the bytes; the MIME type is the browser's concern.
  const session = createSession({ runtime: async () => runtime, decodeImage: (bytes) => decodeImage(bytes) });
  return {
    session,
    rt,
    close() {
      runtime.dispose();
      engine.destroy();
    },
  };
}
