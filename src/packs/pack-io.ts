// What the pack builder reads and writes, abstractly, so one builder runs in Node (file
// handles, a temporary folder renamed at the end) and in a browser worker (File.slice, an
// OPFS folder): sources are read by byte range — never whole, since a weights file can be
// larger than one allocation (the Hub's fp32 SD 1.5 UNet is 3.4 GB, above Node's 2 GiB
// Buffer limit) — and the pack is written file by file, in pieces, into a staging area that
// only becomes a pack when the build commits it.
import { parseSafetensorsHeader, safetensorsHeaderSize, type SafetensorsHeader } from './safetensors.ts';

/** A file that can be read by byte range. */
export interface RangedSource {
  /** For messages: a path or file name. */
  readonly name: string;
  readonly size: number;
  /** Exactly `length` bytes from `offset` (a short read is an error, not a smaller result). */
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** A folder of sources (a diffusers folder, a --config folder), by relative POSIX path. */
export interface SourceFolder {
  readonly name: string;
  /** The file, or null when there is none at that path. */
  open(path: string): Promise<RangedSource | null>;
}

/** One file being written into the pack. */
export interface PackFileSink {
  write(bytes: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/**
 * Where a pack is built. Files are written into a staging area; `commit` makes the finished
 * pack appear under its final name at once, `discard` removes the staging area. Until
 * `commit`, nothing that looks like a pack exists.
 */
export interface PackSink {
  create(path: string): Promise<PackFileSink>;
  commit(): Promise<void>;
  discard(): Promise<void>;
}

export interface BuildProgress {
  /** What is being done, e.g. "unet/diffusion_pytorch_model.safetensors". */
  stage: string;
  /** Source weight bytes converted so far and in all. */
  bytesDone: number;
  bytesTotal: number;
  /** Bytes per second since the conversion started (0 before the first piece). */
  rate: number;
  /** Seconds left at that rate (null until known). */
  etaSeconds: number | null;
}

export async function readText(src: RangedSource): Promise<string> {
  return new TextDecoder('utf-8', { fatal: true }).decode(await src.read(0, src.size));
}

/**
 * JSON as Python's json module writes it: diffusers saves `-Infinity` / `Infinity` / `NaN`
 * bare (e.g. DPMSolverMultistepScheduler's lambda_min_clipped), which JSON.parse refuses.
 */
export function parsePythonJson(text: string, what: string): unknown {
  const marked = text.replace(/"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)/g, (m, bare: string | undefined) =>
    bare === undefined ? m : `{"__py_float__":"${bare}"}`,
  );
  try {
    return JSON.parse(marked, (_k, v: unknown) => {
      if (v && typeof v === 'object' && !Array.isArray(v)) {
        const keys = Object.keys(v);
        if (keys.length === 1 && keys[0] === '__py_float__')
          return Number((v as { __py_float__: string }).__py_float__);
      }
      return v;
    });
  } catch (e) {
    throw new Error(`${what}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
}

export async function readJson(src: RangedSource): Promise<Record<string, unknown>> {
  const v = parsePythonJson(await readText(src), src.name);
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${src.name}: expected a JSON object`);
  return v as Record<string, unknown>;
}

/** The safetensors header of a source, read by range (8 bytes, then the header). */
export async function readSafetensorsHeader(src: RangedSource): Promise<SafetensorsHeader> {
  if (src.size < 8) throw new Error(`${src.name}: ${src.size} bytes is too short for a safetensors file`);
  try {
    const end = safetensorsHeaderSize(await src.read(0, 8));
    if (end > src.size) throw new Error(`the header length field says ${end - 8} bytes but the file has ${src.size}`);
    return parseSafetensorsHeader(await src.read(0, end), { fileSize: src.size });
  } catch (e) {
    throw new Error(`${src.name}: ${(e as Error).message}`, { cause: e });
  }
}

/** A RangedSource over bytes in memory (small files, tests). */
export function memorySource(name: string, bytes: Uint8Array): RangedSource {
  return {
    name,
    size: bytes.length,
    read: async (offset, length) => {
      if (offset < 0 || offset + length > bytes.length)
        throw new Error(`${name}: read past the end (${offset}+${length} of ${bytes.length})`);
      return bytes.subarray(offset, offset + length);
    },
  };
}

/** A SourceFolder over a path → bytes map (tests, browser-picked folders already listed). */
export function memoryFolder(name: string, files: ReadonlyMap<string, Uint8Array>): SourceFolder {
  return {
    name,
    open: async (path) => {
      const b = files.get(path);
      return b ? memorySource(`${name}/${path}`, b) : null;
    },
  };
}

/** Progress with rate and ETA from a clock (injected so tests and workers share it). */
export class ProgressMeter {
  private done = 0;
  private readonly t0: number;
  constructor(
    readonly total: number,
    private readonly report: ((p: BuildProgress) => void) | undefined,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.t0 = now();
  }

  add(bytes: number, stage: string): void {
    this.done += bytes;
    if (!this.report) return;
    const seconds = (this.now() - this.t0) / 1000;
    const rate = seconds > 0 ? this.done / seconds : 0;
    this.report({
      stage,
      bytesDone: this.done,
      bytesTotal: this.total,
      rate,
      etaSeconds: rate > 0 ? (this.total - this.done) / rate : null,
    });
  }
}

/** A PackSink in memory (tests; small packs in a worker): `files` holds what was committed. */
export function memoryPackSink(): PackSink & {
  files: Map<string, Uint8Array> | null;
  created: string[];
  discarded: boolean;
} {
  const staging = new Map<string, Uint8Array>();
  const sink = {
    files: null as Map<string, Uint8Array> | null,
    created: [] as string[],
    discarded: false,
    async create(path: string): Promise<PackFileSink> {
      sink.created.push(path);
      const parts: Uint8Array[] = [];
      return {
        write: async (bytes) => void parts.push(bytes.slice()),
        close: async () => {
          const n = parts.reduce((a, p) => a + p.length, 0);
          const out = new Uint8Array(n);
          let at = 0;
          for (const p of parts) {
            out.set(p, at);
            at += p.length;
          }
          staging.set(path, out);
        },
      };
    },
    async commit() {
      sink.files = new Map(staging);
    },
    async discard() {
      staging.clear();
      sink.discarded = true;
    },
  };
  return sink;
}

/** A RangedSource over a Blob or File (browser File.slice; Node's Blob too): nothing is read whole. */
export function blobSource(name: string, blob: Blob): RangedSource {
  return {
    name,
    size: blob.size,
    read: async (offset, length) => {
      if (offset < 0 || offset + length > blob.size)
        throw new Error(`${name}: read past the end (${offset}+${length} of ${blob.size})`);
      return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
    },
  };
}

/**
 * A SourceFolder over picked files by relative path (e.g. an <input webkitdirectory> pick:
 * `webkitRelativePath` minus the top folder's name).
 */
export function blobFolder(name: string, files: ReadonlyMap<string, Blob>): SourceFolder {
  return {
    name,
    open: async (path) => {
      const b = files.get(path.replace(/^\.\//, ''));
      return b ? blobSource(`${name}/${path}`, b) : null;
    },
  };
}
