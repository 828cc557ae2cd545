// Training images for the encoder: a folder (or a list file) of photos, each cut to a square
// (a box from --boxes, else the centred square), kept in memory at a bounded size, plus the
// light augmentation of a training sample (a random square crop of 7/8 … 1 of the side and a
// mirror) and the data order (one seeded permutation per epoch).
// Node only (reads files).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { decodeImage } from '../image/decode-node.ts';
import type { CropRect } from '../domain/types.ts';
import { cropRect, resize, squareRect, type PixelRect } from '../image/transform.ts';
import type { RgbaImage } from '../image/types.ts';
import { flipHorizontal } from '../pipeline/augment.ts';
import { PhiloxRandom } from '../pipeline/random.ts';

export interface TrainingImage {
  /** Stable name (the file name): checkpoints record the list to refuse another data set. */
  id: string;
  /** The square crop, at most `maxSide` pixels wide. */
  square: RgbaImage;
}

/** A square box in photo pixels: the same shape as the app's crop. */
export type SquareBox = CropRect;

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg']);

/** The image files of a folder (sorted by name), or the lines of a list file (paths relative to it). */
export function listImageFiles(source: string): string[] {
  if (!existsSync(source)) throw new Error(`training images: ${source} does not exist`);
  if (statSync(source).isDirectory()) {
    const files = readdirSync(source)
      .filter((f) => IMAGE_EXTENSIONS.has(extname(f).toLowerCase()))
      .sort()
      .map((f) => join(source, f));
    if (files.length === 0) throw new Error(`training images: no .png/.jpg files in ${source}`);
    return files;
  }
  const base = dirname(resolve(source));
  const files = readFileSync(source, 'utf8')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => resolve(base, l));
  if (files.length === 0) throw new Error(`training images: the list ${source} names no files`);
  return files;
}

/** --boxes JSON: { "<file name or path>": [x, y, size] | {x, y, size} } */
export function parseBoxes(json: string): Map<string, SquareBox> {
  const raw: unknown = JSON.parse(json);
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    throw new Error('boxes: expected an object { "file": [x, y, size] }');
  const out = new Map<string, SquareBox>();
  for (const [name, v] of Object.entries(raw as Record<string, unknown>)) {
    const [x, y, size] = Array.isArray(v) ? v : [(v as SquareBox)?.x, (v as SquareBox)?.y, (v as SquareBox)?.size];
    if (![x, y, size].every((n) => Number.isInteger(n) && n >= 0) || size < 1) {
      throw new Error(`boxes: "${name}" must be [x, y, size] in whole pixels`);
    }
    out.set(name, { x, y, size });
  }
  return out;
}

/** Decode, crop to the box (or the centred square) and shrink to at most `maxSide`. */
export async function loadTrainingImages(
  files: readonly string[],
  maxSide: number,
  boxes?: ReadonlyMap<string, SquareBox>,
): Promise<TrainingImage[]> {
  const out: TrainingImage[] = [];
  const seen = new Set<string>();
  for (const file of files) {
    const id = basename(file);
    if (seen.has(id))
      throw new Error(`training images: two files are named ${id}; names identify images in checkpoints`);
    seen.add(id);
    const img = await decodeImage(new Uint8Array(readFileSync(file)));
    const box = boxes?.get(id) ?? boxes?.get(file);
    const square = box ? cropRect(img, squareRect(box)) : cropRect(img);
    out.push({ id, square: square.width > maxSide ? resize(square, maxSide, maxSide, 'bicubic') : square });
  }
  return out;
}

/** The random choices of one augmented view, each in [0, 1). */
export interface AugmentDraw {
  zoom: number;
  offsetX: number;
  offsetY: number;
  flip: number;
}

/** A square crop of 7/8 … 1 of the side at a random position, mirrored half the time, at `size`. */
export function augmentView(square: RgbaImage, d: AugmentDraw, size: number): RgbaImage {
  const s = square.width;
  const side = Math.max(1, Math.min(s, Math.round(s * (7 / 8 + d.zoom / 8))));
  const rect: PixelRect = {
    x: Math.min(s - side, Math.floor(d.offsetX * (s - side + 1))),
    y: Math.min(s - side, Math.floor(d.offsetY * (s - side + 1))),
    width: side,
    height: side,
  };
  let view = side === s ? square : cropRect(square, rect);
  if (view.width !== size) view = resize(view, size, size, 'bicubic');
  return d.flip < 0.5 ? view : flipHorizontal(view);
}

/** Philox stream of epoch e's permutation (the step streams start at 1). */
const ORDER_STREAM = 2 ** 40;

/** The order images are visited in during epoch `epoch`: Fisher–Yates on a seeded stream. */
export function epochOrder(seed: number, epoch: number, n: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  const words = new PhiloxRandom(seed, { stream: ORDER_STREAM + epoch }).uint32s(n);
  for (let i = n - 1; i > 0; i--) {
    // floor(u·(i + 1)) for a 32-bit uniform u: a bias of at most (i + 1)/2³², negligible here.
    const j = Math.floor((words[i] / 2 ** 32) * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/**
 * Image indices of samples [first, first + count) of the stream that visits the images in
 * epochs: epoch e is epochOrder(seed, e) cut to whole batches (the last n mod batch images
 * of each epoch's order are skipped, as with drop_last), so no batch ever holds an image
 * twice; the skipped images change with every epoch's order.
 */
export function samplesAt(seed: number, n: number, batch: number, first: number, count: number): number[] {
  const perEpoch = samplesPerEpoch(n, batch);
  const out: number[] = [];
  let cachedEpoch = -1;
  let order: number[] = [];
  for (let g = first; g < first + count; g++) {
    const epoch = Math.floor(g / perEpoch);
    if (epoch !== cachedEpoch) {
      order = epochOrder(seed, epoch, n);
      cachedEpoch = epoch;
    }
    out.push(order[g - epoch * perEpoch]);
  }
  return out;
}

/** Samples drawn per epoch: the whole batches that n images fill. */
export function samplesPerEpoch(n: number, batch: number): number {
  if (!(batch >= 1 && n >= batch)) throw new Error(`data order: ${n} image(s) cannot fill a batch of ${batch}`);
  return Math.floor(n / batch) * batch;
}
