// The one CRC-32 in the app (ISO 3309 / ITU-T V.42, reflected polynomial 0xEDB88320): PNG
// chunk checksums (reading, writing, validating uploads) and ZIP entries (storage/zip.ts)
// all use this function. test/png-test-encoder.ts keeps an independent bitwise one as the
// reference the tests check against.
const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC over `bytes[start, end)`, continuing from `crc` (pass the previous result to chain). */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = start; i < end; i++) c = TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
