// Real images made at test time with sharp (and one hand-built PNG header):
// the inputs the image jobs must handle or refuse.

import { deflateSync, crc32 } from 'node:zlib';
import sharp from 'sharp';

/** 400×200 pixels stored, EXIF Orientation 6 (displayed 200×400), a camera make and GPS tags. */
export async function jpegWithExifAndGps(): Promise<Buffer> {
  return sharp({ create: { width: 400, height: 200, channels: 3, background: '#c83' } })
    .jpeg()
    .withExif({ IFD0: { Make: 'SluiceTestCam' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '51/1 30/1 0/1', GPSLongitudeRef: 'W', GPSLongitude: '0/1 7/1 0/1' } })
    .withMetadata({ orientation: 6 })
    .toBuffer();
}

/** 300×200 PNG, half-transparent. */
export async function pngWithAlpha(): Promise<Buffer> {
  return sharp({ create: { width: 300, height: 200, channels: 4, background: { r: 0, g: 90, b: 200, alpha: 0.5 } } }).png().toBuffer();
}

async function frames(): Promise<Buffer[]> {
  return Promise.all(['#f00', '#0f0', '#00f'].map((c) => sharp({ create: { width: 640, height: 480, channels: 3, background: c } }).png().toBuffer()));
}

/** Three 640×480 frames. */
export async function animatedGif(): Promise<Buffer> {
  return sharp(await frames(), { join: { animated: true } }).gif().toBuffer();
}

export async function animatedWebp(): Promise<Buffer> {
  return sharp(await frames(), { join: { animated: true } }).webp().toBuffer();
}

/** A noisy 600×600 JPEG cut in the middle of its scan data. */
export async function truncatedJpeg(): Promise<Buffer> {
  const noise = Buffer.alloc(600 * 600 * 3);
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
  const full = await sharp(noise, { raw: { width: 600, height: 600, channels: 3 } }).jpeg().toBuffer();
  return full.subarray(0, Math.floor(full.length / 2));
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/**
 * A pixel bomb: a valid PNG header declaring width × height RGB pixels with a
 * few hundred bytes of compressed data. 8000×8000 is under sharp's default
 * limit (268 M pixels) but over sluice's default (40 M).
 */
export function pngBomb(width = 8000, height = 8000): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const rows = deflateSync(Buffer.alloc((width * 3 + 1) * 16)); // the first 16 rows; the rest is missing
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', rows), chunk('IEND', Buffer.alloc(0))]);
}
