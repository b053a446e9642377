// Byte layout helpers for the sketch's serialized form: unsigned varints (counts are integers up to
// 2^53, mostly small), little-endian u32 (fingerprints are uniform, a varint would grow them), and
// length-prefixed UTF-8. No DataView or Buffer: this runs in workerd and Node alike.

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export class ByteWriter {
  private buf: Uint8Array;
  private n = 0;

  constructor(initial = 1024) {
    this.buf = new Uint8Array(initial);
  }

  private reserve(bytes: number): void {
    if (this.n + bytes <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.n + bytes));
    next.set(this.buf.subarray(0, this.n));
    this.buf = next;
  }

  varint(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`varint out of range: ${v}`);
    this.reserve(8);
    // Division, not shifts: shifts truncate to 32 bits and counts may exceed that.
    while (v >= 0x80) {
      this.buf[this.n++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.n++] = v;
  }

  u32(v: number): void {
    this.reserve(4);
    this.buf[this.n++] = v & 0xff;
    this.buf[this.n++] = (v >>> 8) & 0xff;
    this.buf[this.n++] = (v >>> 16) & 0xff;
    this.buf[this.n++] = (v >>> 24) & 0xff;
  }

  text(s: string): void {
    const bytes = encoder.encode(s);
    this.varint(bytes.length);
    this.reserve(bytes.length);
    this.buf.set(bytes, this.n);
    this.n += bytes.length;
  }

  bytes(): Uint8Array {
    return this.buf.slice(0, this.n);
  }
}

export class ByteReader {
  private n = 0;

  constructor(private readonly buf: Uint8Array) {}

  private byte(): number {
    const b = this.buf[this.n++];
    if (b === undefined) throw new RangeError('truncated sketch');
    return b;
  }

  varint(): number {
    let v = 0;
    let scale = 1;
    for (;;) {
      const b = this.byte();
      v += (b & 0x7f) * scale;
      if (b < 0x80) break;
      scale *= 0x80;
      if (scale > 2 ** 49) throw new RangeError('varint too long');
    }
    if (!Number.isSafeInteger(v)) throw new RangeError('varint out of range');
    return v;
  }

  u32(): number {
    const v = this.byte() | (this.byte() << 8) | (this.byte() << 16) | (this.byte() << 24);
    return v >>> 0;
  }

  text(): string {
    const len = this.varint();
    if (this.n + len > this.buf.length) throw new RangeError('truncated sketch');
    const s = decoder.decode(this.buf.subarray(this.n, this.n + len));
    this.n += len;
    return s;
  }

  done(): boolean {
    return this.n === this.buf.length;
  }
}

export function toBase64(bytes: Uint8Array): string {
  let bin = '';
  // Chunked: String.fromCharCode(...all) overflows the argument stack on large inputs.
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

export function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
