// A minimal .zip writer: stored entries only (no compression: safetensors of float noise do
// not compress, and every unzip tool reads "stored"), CRC-32 per entry, UTF-8 names, one
// central directory. No ZIP64: an export is a few MiB, so sizes past 4 GiB or more than
// 65 535 entries are refused rather than written wrong. Layout per APPNOTE.TXT (PKWARE) §4.3.
import { crc32 } from '../image/crc32.ts';

export interface ZipEntry {
  /** Path inside the archive, '/'-separated, no leading '/', no '..'. */
  name: string;
  bytes: Uint8Array;
}

const MAX_U32 = 0xffffffff;

/** DOS date and time words (2-second resolution, years 1980–2107, local = UTC here). */
function dosDateTime(date: Date): { time: number; date: number } {
  const y = Math.min(2107, Math.max(1980, date.getUTCFullYear()));
  return {
    time: (date.getUTCHours() << 11) | (date.getUTCMinutes() << 5) | (date.getUTCSeconds() >> 1),
    date: ((y - 1980) << 9) | ((date.getUTCMonth() + 1) << 5) | date.getUTCDate(),
  };
}

function checkName(name: string): void {
  if (
    typeof name !== 'string' ||
    name.length === 0 ||
    name.startsWith('/') ||
    name.includes('\\') ||
    name.split('/').some((p) => p === '..' || p === '.' || p === '') ||
    // eslint-disable-next-line no-control-regex -- control characters are what it refuses
    /[\u0000-\u001f]/.test(name)
  ) {
    throw new Error(`zip: ${JSON.stringify(name)} is not a safe relative file name`);
  }
}

/** The entries as one .zip archive (stored, not compressed). */
export function writeZip(entries: readonly ZipEntry[], modified: Date = new Date(0)): Uint8Array {
  if (entries.length > 0xffff) throw new Error(`zip: ${entries.length} entries, over the 65 535 a plain zip holds`);
  const enc = new TextEncoder();
  const seen = new Set<string>();
  const { time, date } = dosDateTime(Number.isFinite(modified.getTime()) ? modified : new Date(0));
  const prepared = entries.map((e) => {
    checkName(e.name);
    if (seen.has(e.name)) throw new Error(`zip: ${JSON.stringify(e.name)} appears twice`);
    seen.add(e.name);
    if (e.bytes.length > MAX_U32) throw new Error(`zip: ${e.name} is over 4 GiB`);
    return { name: enc.encode(e.name), bytes: e.bytes, crc: crc32(e.bytes) };
  });
  const localSize = prepared.reduce((n, e) => n + 30 + e.name.length + e.bytes.length, 0);
  const centralSize = prepared.reduce((n, e) => n + 46 + e.name.length, 0);
  if (localSize + centralSize > MAX_U32) throw new Error('zip: the archive would be over 4 GiB');
  const out = new Uint8Array(localSize + centralSize + 22);
  const dv = new DataView(out.buffer);
  let at = 0;
  const u16 = (v: number) => {
    dv.setUint16(at, v, true);
    at += 2;
  };
  const u32 = (v: number) => {
    dv.setUint32(at, v >>> 0, true);
    at += 4;
  };
  // Version 2.0 (stored entries, folders); flag bit 11: names are UTF-8.
  const VERSION = 20;
  const FLAGS = 0x0800;
  const offsets: number[] = [];
  for (const e of prepared) {
    offsets.push(at);
    u32(0x04034b50);
    u16(VERSION);
    u16(FLAGS);
    u16(0); // method: stored
    u16(time);
    u16(date);
    u32(e.crc);
    u32(e.bytes.length); // compressed size
    u32(e.bytes.length); // uncompressed size
    u16(e.name.length);
    u16(0); // extra field length
    out.set(e.name, at);
    at += e.name.length;
    out.set(e.bytes, at);
    at += e.bytes.length;
  }
  const centralStart = at;
  prepared.forEach((e, i) => {
    u32(0x02014b50);
    u16(VERSION); // made by (MS-DOS attributes)
    u16(VERSION);
    u16(FLAGS);
    u16(0);
    u16(time);
    u16(date);
    u32(e.crc);
    u32(e.bytes.length);
    u32(e.bytes.length);
    u16(e.name.length);
    u16(0); // extra
    u16(0); // comment
    u16(0); // disk number
    u16(0); // internal attributes
    u32(0); // external attributes
    u32(offsets[i]);
    out.set(e.name, at);
    at += e.name.length;
  });
  const centralLength = at - centralStart;
  u32(0x06054b50);
  u16(0);
  u16(0);
  u16(prepared.length);
  u16(prepared.length);
  u32(centralLength);
  u32(centralStart);
  u16(0); // comment length
  return out;
}
