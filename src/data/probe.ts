/**
 * Reads width, height and EXIF orientation from the first bytes of a JPEG or PNG in JS, so the
 * augmentation can be planned without a metadata round trip through sharp (which costs about as
 * much as decoding a small image). Other formats return null and fall back to sharp.metadata().
 */
export interface ImageHeader {
  format: 'jpeg' | 'png';
  /** Size after applying the EXIF orientation (what the user sees). */
  width: number;
  height: number;
  /** EXIF orientation 1–8 (1: as stored). */
  orientation: number;
}

export function probeImage(buf: Uint8Array): ImageHeader | null {
  if (buf.length >= 24 && buf[0] === 0x89 && buf[1] === 0x50 && buf[2] === 0x4e && buf[3] === 0x47) {
    const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    return { format: 'png', width: v.getUint32(16), height: v.getUint32(20), orientation: 1 };
  }
  if (buf.length < 4 || buf[0] !== 0xff || buf[1] !== 0xd8) return null;
  let orientation = 1;
  let p = 2;
  while (p + 4 <= buf.length) {
    if (buf[p] !== 0xff) return null;
    const marker = buf[p + 1] ?? 0;
    if (marker === 0xff) {
      p++;
      continue;
    }
    const len = ((buf[p + 2] ?? 0) << 8) | (buf[p + 3] ?? 0);
    if (marker === 0xe1) orientation = exifOrientation(buf, p + 4, len - 2) ?? orientation;
    // SOF0–SOF15 except DHT (c4), JPG (c8) and DAC (cc).
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (p + 9 > buf.length) return null;
      const h = ((buf[p + 5] ?? 0) << 8) | (buf[p + 6] ?? 0);
      const w = ((buf[p + 7] ?? 0) << 8) | (buf[p + 8] ?? 0);
      if (w === 0 || h === 0) return null;
      const swap = orientation >= 5 && orientation <= 8;
      return { format: 'jpeg', width: swap ? h : w, height: swap ? w : h, orientation };
    }
    if (marker === 0xda || marker === 0xd9) return null;
    p += 2 + len;
  }
  return null;
}

function exifOrientation(buf: Uint8Array, start: number, len: number): number | null {
  const end = Math.min(buf.length, start + len);
  // "Exif\0\0" then a TIFF header.
  if (end - start < 14 || buf[start] !== 0x45 || buf[start + 1] !== 0x78) return null;
  const t = start + 6;
  const little = buf[t] === 0x49;
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const u16 = (o: number): number => (o + 2 <= end ? v.getUint16(o, little) : 0);
  const u32 = (o: number): number => (o + 4 <= end ? v.getUint32(o, little) : 0);
  const ifd = t + u32(t + 4);
  const n = u16(ifd);
  for (let i = 0; i < n; i++) {
    const e = ifd + 2 + i * 12;
    if (e + 12 > end) return null;
    if (u16(e) === 0x0112) {
      const o = u16(e + 8);
      return o >= 1 && o <= 8 ? o : null;
    }
  }
  return null;
}
