// The transfer worker: an incremental SHA-256 (WebCrypto's digest is not incremental) and the
// sender's file reader, off the page's main thread so hashing never blocks it and no file
// is ever held whole in memory. One self-contained classic script: a worker's own policy
// (default-src 'none') allows no imports.
//
// Messages in (each may carry ref, echoed in the answer):
//   {op:'hash-new', key} · {op:'hash-data', key, buf} · {op:'hash-save', key, ref} → {ref, state}
//   {op:'hash-load', key, state} · {op:'hash-digest', key, ref} → {ref, hex} · {op:'drop', key}
//   {op:'read-open', key, file, offset, ref} hashes the file's bytes 0..offset → {ref, ready:true}
//   {op:'read-pull', key, n} reads up to n more chunks → {op:'chunk', key, buf} … and at the
//     end {op:'eof', key, hex} (the SHA-256 of the whole file)
// Failures answer {op:'fail', key, ref, message}.

'use strict';

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const INIT = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/** SHA-256 fed in pieces; its state can be saved and loaded (to resume a file). */
class Sha256 {
  constructor() {
    this.h = new Int32Array(INIT);
    this.w = new Int32Array(64);
    this.block = new Uint8Array(64);
    this.fill = 0; // bytes waiting in block
    this.length = 0; // bytes hashed in all
  }

  /** Adds bytes (a Uint8Array or ArrayBuffer). */
  update(data) {
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
    let i = 0;
    const n = bytes.length;
    this.length += n;
    if (this.fill > 0) {
      const take = Math.min(64 - this.fill, n);
      this.block.set(bytes.subarray(0, take), this.fill);
      this.fill += take;
      i = take;
      if (this.fill < 64) return this;
      this.compress(this.block, 0);
      this.fill = 0;
    }
    for (; i + 64 <= n; i += 64) this.compress(bytes, i);
    if (i < n) {
      this.block.set(bytes.subarray(i), 0);
      this.fill = n - i;
    }
    return this;
  }

  compress(p, o) {
    const w = this.w;
    const h = this.h;
    for (let t = 0; t < 16; t++, o += 4) w[t] = (p[o] << 24) | (p[o + 1] << 16) | (p[o + 2] << 8) | p[o + 3];
    for (let t = 16; t < 64; t++) {
      const x = w[t - 15];
      const y = w[t - 2];
      w[t] = ((((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10)) + w[t - 7] +
        (((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3)) + w[t - 16]) | 0;
    }
    let a = h[0]; let b = h[1]; let c = h[2]; let d = h[3];
    let e = h[4]; let f = h[5]; let g = h[6]; let k = h[7];
    for (let t = 0; t < 64; t++) {
      const t1 = (k + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) +
        (g ^ (e & (f ^ g))) + K[t] + w[t]) | 0;
      const t2 = ((((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) +
        ((a & b) | (c & (a | b)))) | 0;
      k = g; g = f; f = e; e = (d + t1) | 0;
      d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    h[0] = (h[0] + a) | 0; h[1] = (h[1] + b) | 0; h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0;
    h[4] = (h[4] + e) | 0; h[5] = (h[5] + f) | 0; h[6] = (h[6] + g) | 0; h[7] = (h[7] + k) | 0;
  }

  /** The digest as lowercase hex; the hasher is spent afterwards. */
  hex() {
    const bits = this.length * 8;
    const tail = new Uint8Array(this.fill < 56 ? 64 : 128);
    tail.set(this.block.subarray(0, this.fill));
    tail[this.fill] = 0x80;
    const end = tail.length;
    const hi = Math.floor(bits / 0x100000000);
    const lo = bits >>> 0;
    tail[end - 8] = hi >>> 24; tail[end - 7] = hi >>> 16; tail[end - 6] = hi >>> 8; tail[end - 5] = hi;
    tail[end - 4] = lo >>> 24; tail[end - 3] = lo >>> 16; tail[end - 2] = lo >>> 8; tail[end - 1] = lo;
    for (let o = 0; o < end; o += 64) this.compress(tail, o);
    let out = '';
    for (const v of this.h) out += (v >>> 0).toString(16).padStart(8, '0');
    return out;
  }

  save() {
    return { h: Array.from(this.h), block: this.block.slice(0, this.fill), length: this.length };
  }

  static load(state) {
    const s = new Sha256();
    s.h.set(state.h);
    s.block.set(state.block);
    s.fill = state.block.length;
    s.length = state.length;
    return s;
  }
}

const CHUNK = 65536;
const hashers = new Map(); // key → Sha256
const readers = new Map(); // key → { file, offset, hash, busy, want }

async function readOpen(msg) {
  const hash = new Sha256();
  const file = msg.file;
  const offset = Math.min(msg.offset || 0, file.size);
  // A resumed file: hash what the receiver already has first (in large slices, off the page).
  for (let o = 0; o < offset; o += 4 * 1024 * 1024) {
    hash.update(await file.slice(o, Math.min(offset, o + 4 * 1024 * 1024)).arrayBuffer());
  }
  readers.set(msg.key, { file, offset, hash, busy: false, want: 0 });
  self.postMessage({ ref: msg.ref, ready: true });
}

async function readPump(key) {
  const r = readers.get(key);
  if (!r || r.busy) return;
  r.busy = true;
  try {
    while (r.want > 0 && readers.get(key) === r) {
      if (r.offset >= r.file.size) {
        readers.delete(key);
        self.postMessage({ op: 'eof', key, hex: r.hash.hex() });
        return;
      }
      // Read up to 16 chunks at a time: fewer, larger reads are faster than many small ones.
      const n = Math.min(r.want, 16);
      const end = Math.min(r.file.size, r.offset + n * CHUNK);
      const bytes = new Uint8Array(await r.file.slice(r.offset, end).arrayBuffer());
      if (readers.get(key) !== r) return;
      r.hash.update(bytes);
      for (let o = 0; o < bytes.length; o += CHUNK) {
        const buf = bytes.slice(o, o + CHUNK).buffer;
        self.postMessage({ op: 'chunk', key, buf }, [buf]);
        r.want--;
      }
      r.offset = end;
      if (r.offset >= r.file.size && r.want <= 0) r.want = 1; // report eof without another pull
    }
  } finally {
    r.busy = false;
  }
}

function handle(msg) {
  switch (msg.op) {
    case 'hash-new':
      hashers.set(msg.key, new Sha256());
      break;
    case 'hash-data':
      hashers.get(msg.key)?.update(msg.buf);
      break;
    case 'hash-save':
      self.postMessage({ ref: msg.ref, state: hashers.get(msg.key)?.save() || null });
      break;
    case 'hash-load':
      hashers.set(msg.key, Sha256.load(msg.state));
      break;
    case 'hash-digest': {
      const hasher = hashers.get(msg.key);
      hashers.delete(msg.key);
      self.postMessage({ ref: msg.ref, hex: hasher ? hasher.hex() : '' });
      break;
    }
    case 'drop':
      hashers.delete(msg.key);
      readers.delete(msg.key);
      break;
    case 'read-open':
      return readOpen(msg);
    case 'read-pull': {
      const r = readers.get(msg.key);
      if (r) {
        r.want += msg.n;
        return readPump(msg.key);
      }
      break;
    }
    default:
  }
  return undefined;
}

if (typeof self !== 'undefined' && typeof self.postMessage === 'function' && typeof importScripts === 'function') {
  self.onmessage = (event) => {
    const msg = event.data;
    Promise.resolve().then(() => handle(msg)).catch((err) => {
      self.postMessage({ op: 'fail', key: msg.key, ref: msg.ref, message: String(err?.message || err) });
    });
  };
}
