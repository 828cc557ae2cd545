// Photo upload: bad files are refused in the main thread with their own message and leave
// the library as it was; good ones arrive by picker, drop or paste, and the crop responds to
// keyboard and pointer.
import { readFileSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { expect, PHOTOS, test, type FileInput } from './fixtures.ts';

const chelsea = readFileSync(`${PHOTOS}/chelsea.png`);

/** A PNG whose IHDR (valid CRC) claims w × h, followed by a token IDAT and IEND. */
function pngClaiming(w: number, h: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([Buffer.from(type), data])));
    return Buffer.concat([head, Buffer.from(type), data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([
    chelsea.subarray(0, 8),
    chunk('IHDR', ihdr),
    chunk('IDAT', Buffer.alloc(16)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** chelsea.png with its compressed pixel data overwritten (chunk lengths and CRCs still valid). */
function pngScrambled(): Buffer {
  const out = Buffer.from(chelsea);
  for (let at = 8; at < out.length;) {
    const len = out.readUInt32BE(at);
    const type = out.toString('latin1', at + 4, at + 8);
    if (type === 'IDAT') {
      out.fill(0xab, at + 8, at + 8 + len);
      out.writeUInt32BE(crc32(out.subarray(at + 4, at + 8 + len)), at + 8 + len);
    }
    at += 12 + len;
  }
  return out;
}

const BAD: { file: FileInput; kind: string; message: string }[] = [
  {
    file: { name: 'holiday.png', mimeType: 'image/png', buffer: Buffer.from('Packing list\n- sun cream\n- hat\n') },
    kind: 'upload-not-image',
    message: '“holiday.png” is not a PNG, JPEG or WebP image — it looks like text.',
  },
  {
    file: {
      name: 'chelsea-cut.png',
      mimeType: 'image/png',
      buffer: chelsea.subarray(0, Math.floor(chelsea.length * 0.6)),
    },
    kind: 'upload-truncated',
    message: '“chelsea-cut.png” is cut short: the PNG file ends before its image data does.',
  },
  {
    file: { name: 'empty.jpg', mimeType: 'image/jpeg', buffer: Buffer.alloc(0) },
    kind: 'upload-empty',
    message: '“empty.jpg” is empty (0 bytes).',
  },
  {
    file: { name: 'huge.png', mimeType: 'image/png', buffer: pngClaiming(10000, 5000) },
    kind: 'upload-too-large',
    message: '“huge.png” is 10000 × 5000 pixels (50.0 megapixels); the limit is 40 megapixels.',
  },
  {
    // Structurally sound: only the decoder (createImageBitmap) can tell.
    file: { name: 'scrambled.png', mimeType: 'image/png', buffer: pngScrambled() },
    kind: 'upload-corrupt',
    message: '“scrambled.png” is a damaged PNG file: the browser could not decode its image data.',
  },
];

test('bad files are refused with their own message, and the library is unchanged', async ({ app }) => {
  const { page } = app;
  await app.resetStorage();
  await app.open();
  await app.saveConcept({ name: 'Existing concept' });
  const before = await app.rawLibrary();
  expect(before.indexIds).toHaveLength(1);
  await app.open();

  for (const bad of BAD) {
    await app.choosePhoto(bad.file);
    const notices = await app.notices();
    expect(notices, bad.file.name).toEqual([{ kind: bad.kind, area: 'photo', message: bad.message }]);
    const shown = page.locator(`[data-testid="notice"][data-kind="${bad.kind}"]`);
    expect(await shown.getAttribute('role')).toBe('alert');
    expect(await shown.getByTestId('notice-message').textContent()).toBe(bad.message);
    expect(await app.state((s) => s.photo.status)).toBe('rejected');
    await app.screenshot(`upload-${bad.kind}`);
  }
  // Nothing reached the worker or the library.
  expect(await app.state((s) => s.personalize.status)).toBe('idle');
  expect(await app.rawLibrary()).toEqual(before);
});

test('a good photo shows with a square crop that keys and pointer move and resize', async ({ app }) => {
  const { page } = app;
  await app.open();
  await app.choosePhoto('chelsea.png');
  expect(await app.state((s) => [s.photo.status, s.photo.image?.width, s.photo.image?.height, s.photo.crop])).toEqual([
    'ready',
    451,
    300,
    { x: 75, y: 0, size: 300 },
  ]);
  const crop = () => app.state((s) => s.photo.crop);
  const box = page.getByTestId('crop-box');
  await box.focus();
  await page.keyboard.press('ArrowRight');
  expect(await crop()).toEqual({ x: 78, y: 0, size: 300 });
  await page.keyboard.press('Shift+ArrowLeft');
  expect(await crop()).toEqual({ x: 48, y: 0, size: 300 });
  await page.keyboard.press('-');
  expect(await crop()).toEqual({ x: 56, y: 8, size: 284 });
  await page.keyboard.press('+');
  expect(await crop()).toEqual({ x: 48, y: 0, size: 300 });
  await page.keyboard.press('-');
  await page.keyboard.press('-');
  const small = (await crop())!;
  expect(small.size).toBe(268);
  expect(await box.getAttribute('aria-label')).toBe(`Crop: 268 × 268 pixels at ${small.x}, ${small.y}`);

  // Pointer: drag the square by +40 screen px; the image is shown at its natural size here.
  const b = (await box.boundingBox())!;
  const frame = (await page.getByTestId('crop-frame').boundingBox())!;
  const scale = 451 / frame.width;
  await page.mouse.move(b.x + b.width / 2, b.y + b.height / 2);
  await page.mouse.down();
  await page.mouse.move(b.x + b.width / 2 + 40, b.y + b.height / 2 + 10, { steps: 4 });
  await page.mouse.up();
  const moved = (await crop())!;
  expect(moved.x).toBeCloseTo(small.x + 40 * scale, -0.5);
  expect(moved.y).toBe(Math.min(300 - 268, Math.round(small.y + 10 * scale)));

  // Drag the corner handle outwards: it grows, but never past the image.
  const h = (await page.getByTestId('crop-handle').boundingBox())!;
  await page.mouse.move(h.x + h.width / 2, h.y + h.height / 2);
  await page.mouse.down();
  await page.mouse.move(h.x + 400, h.y + 400, { steps: 4 });
  await page.mouse.up();
  const grown = (await crop())!;
  expect(grown.size).toBe(Math.min(451 - moved.x, 300 - moved.y));
  await app.screenshot('photo-crop');
  expect(app.errors).toEqual([]);
});

test('photos arrive by drop and by paste too, WebP included', async ({ app }) => {
  const { page } = app;
  await app.open();
  await app.goToStep('photo');
  // A WebP encoded by the browser itself, dropped on the zone.
  await page.evaluate(async () => {
    const c = new OffscreenCanvas(64, 48);
    const ctx = c.getContext('2d')!;
    ctx.fillStyle = '#c84';
    ctx.fillRect(0, 0, 64, 48);
    const blob = await c.convertToBlob({ type: 'image/webp', quality: 0.9 });
    const dt = new DataTransfer();
    dt.items.add(new File([blob], 'dropped.webp', { type: 'image/webp' }));
    const zone = document.querySelector('[data-testid="photo-drop"]')!;
    zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
    zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  });
  await page.waitForFunction(() => window.__likeness!.state().photo.status === 'ready');
  expect(
    await app.state((s) => [s.photo.fileName, s.photo.image?.mime, s.photo.image?.width, s.photo.image?.height]),
  ).toEqual(['dropped.webp', 'image/webp', 64, 48]);

  // Paste a JPEG from another step: the app switches to the photo step.
  await app.goToStep('library');
  const jpeg = readFileSync(`${PHOTOS}/rocket.jpg`).toString('base64');
  await page.evaluate((b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], 'image.jpg', { type: 'image/jpeg' }));
    document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
  }, jpeg);
  await page.waitForFunction(() => window.__likeness!.state().photo.fileName === 'image.jpg');
  await page.waitForFunction(() => window.__likeness!.state().photo.status === 'ready');
  expect(await app.state((s) => [s.step, s.photo.image?.width, s.photo.image?.height])).toEqual(['photo', 640, 427]);
  expect(await app.notices()).toEqual([]);
});

/** rocket.jpg (640 × 427) with an EXIF APP1 saying "rotate 90° clockwise to display" (orientation 6). */
function jpegRotated(): Buffer {
  const jpg = readFileSync(`${PHOTOS}/rocket.jpg`);
  // TIFF header (big-endian), one IFD entry: 0x0112 Orientation, SHORT, count 1, value 6.
  const tiff = Buffer.from([
    0x4d, 0x4d, 0, 0x2a, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0,
  ]);
  const body = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
  const head = Buffer.from([0xff, 0xe1, (body.length + 2) >> 8, (body.length + 2) & 0xff]);
  return Buffer.concat([jpg.subarray(0, 2), head, body, jpg.subarray(2)]);
}

test('EXIF orientation is applied: the crop is measured on the upright photo', async ({ app }) => {
  await app.open();
  await app.choosePhoto({ name: 'portrait.jpg', mimeType: 'image/jpeg', buffer: jpegRotated() });
  expect(await app.state((s) => [s.photo.status, s.photo.image?.width, s.photo.image?.height, s.photo.crop])).toEqual([
    'ready',
    427,
    640,
    { x: 0, y: 106, size: 427 },
  ]);
  // The preview shows it upright too (the <img> applies the same orientation).
  const img = app.page.getByTestId('crop-frame').locator('img');
  await expect.poll(() => img.evaluate((i: HTMLImageElement) => [i.naturalWidth, i.naturalHeight])).toEqual([427, 640]);
});
