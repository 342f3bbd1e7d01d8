// Hearth transfer protocol v1 (appliance/transfer/PROTOCOL.md): constants, the hash worker,
// safe file names, the verification string, and control-message checks. No DOM here.

export const LABEL = 'hearth-transfer/1';
export const CHUNK = 65536;
export const MAX_BUFFERED = 4 * 1024 * 1024;
export const LOW_THRESHOLD = 1024 * 1024;
export const ACK_EVERY = 1024 * 1024;
export const MAX_FILES = 10000;
export const PART_SUFFIX = '.hearth-part';
export const RESUME_WAIT = 10 * 60 * 1000;

/** A fresh nonce for a signaling message (PROTOCOL.md 2: 16–64 characters). */
export function nonce() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

// ---- The worker (hashing and the sender's reads) ----

let worker = null;
let refs = 0;
const waiting = new Map(); // ref → { resolve, reject }
const keyed = new Map(); // key → fn(message) for chunk/eof/fail events

/** The shared transfer worker, with request(msg, transfer) → Promise of its answer. */
export function hashWorker() {
  if (worker) return worker;
  const w = new Worker('/transfer/hash-worker.js', { name: 'hearth-transfer' });
  w.onmessage = (event) => {
    const msg = event.data;
    if (msg.ref && waiting.has(msg.ref)) {
      const p = waiting.get(msg.ref);
      waiting.delete(msg.ref);
      if (msg.op === 'fail') p.reject(new Error(msg.message));
      else p.resolve(msg);
      return;
    }
    if (msg.key) keyed.get(msg.key)?.(msg);
  };
  worker = {
    post(msg, transfer = []) {
      w.postMessage(msg, transfer);
    },
    request(msg, transfer = []) {
      const ref = 'r' + ++refs;
      return new Promise((resolve, reject) => {
        waiting.set(ref, { resolve, reject });
        w.postMessage({ ...msg, ref }, transfer);
      });
    },
    listen(key, fn) {
      keyed.set(key, fn);
      return () => keyed.delete(key);
    },
  };
  return worker;
}

let keys = 0;
/** A key naming one hash or read stream in the worker. */
export function newKey(prefix) {
  return `${prefix}-${++keys}-${Math.random().toString(36).slice(2, 8)}`;
}

/** SHA-256 of a (small) string, hex, through the worker (works without WebCrypto on plain http). */
export async function sha256Text(text) {
  const w = hashWorker();
  const key = newKey('t');
  w.post({ op: 'hash-new', key });
  w.post({ op: 'hash-data', key, buf: new TextEncoder().encode(text) });
  const { hex } = await w.request({ op: 'hash-digest', key });
  return hex;
}

// ---- Verification string (PROTOCOL.md 4) ----

/** The a=fingerprint value of an SDP ("sha-256 AB:CD:…"), or ''. */
export function fingerprint(sdp) {
  const m = /^a=fingerprint:(.+)$/m.exec(sdp || '');
  return m ? m[1].trim() : '';
}

/**
 * "123 456": the first 6 decimal digits of SHA-256 over both DTLS fingerprints (sorted,
 * joined with "\n"), the digest read as one big-endian number.
 */
export async function verification(localSDP, remoteSDP) {
  const prints = [fingerprint(localSDP), fingerprint(remoteSDP)];
  if (!prints[0] || !prints[1]) return '';
  prints.sort();
  const hex = await sha256Text(prints.join('\n'));
  const digits = BigInt('0x' + hex).toString(10).padStart(6, '0').slice(0, 6);
  return digits.slice(0, 3) + ' ' + digits.slice(3);
}

// ---- File names (PROTOCOL.md 3.5) ----

const RESERVED = /^(CON|PRN|AUX|NUL|COM[1-9]|LPT[1-9])$/;

/** A Windows device name, with any extension ("con.txt", "LPT1 .log"). */
function reserved(part) {
  return RESERVED.test(part.split('.')[0].replace(/ +$/, '').toUpperCase());
}
const enc = new TextEncoder();

function cutBytes(s, max) {
  if (enc.encode(s).length <= max) return s;
  let out = '';
  let used = 0;
  for (const ch of s) {
    const n = enc.encode(ch).length;
    if (used + n > max) break;
    out += ch;
    used += n;
  }
  return out;
}

/** The parts of a name from a peer, made safe; never empty. */
export function safeParts(name) {
  const parts = [];
  for (let part of String(name ?? '').split('/')) {
    if (part === '' || part === '.' || part === '..') continue;
    // eslint-disable-next-line no-control-regex
    part = part.replace(/[\\\u0000-\u001f\u007f<>:"|?*]/g, '_');
    part = cutBytes(part, 255);
    if (reserved(part)) part = cutBytes('_' + part, 255);
    if (part === '.' || part === '..') part = '_' + part; // cut into a climb: never
    if (part) parts.push(part);
  }
  return parts.length ? parts : ['file'];
}

/** The name itself, made safe ("a/b.txt" stays a path). */
export function safeName(name) {
  return safeParts(name).join('/');
}

/** name → "name (n).ext" (n ≥ 2), the extension kept. */
export function numbered(name, n) {
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return `${name} (${n})`;
  return `${name.slice(0, dot)} (${n})${name.slice(dot)}`;
}

// ---- Control messages (PROTOCOL.md 3.1) ----

const isIndex = (v, n) => Number.isInteger(v) && v >= 0 && v < n;
const isSize = (v) => Number.isSafeInteger(v) && v >= 0;

/** Checks a manifest from a sender: returns the files or throws. */
export function checkManifest(msg) {
  if (!Array.isArray(msg.files) || msg.files.length === 0 || msg.files.length > MAX_FILES) {
    throw new Error('The sender listed no files, or too many.');
  }
  let sum = 0;
  for (const f of msg.files) {
    if (!f || typeof f.name !== 'string' || !isSize(f.size)) throw new Error('The sender\u2019s file list is damaged.');
    sum += f.size;
  }
  if (sum !== msg.total) throw new Error('The sender\u2019s file list does not add up.');
  return msg.files;
}

/** Checks a control message's own fields for file count n; returns it or throws. */
export function checkControl(msg, n) {
  if (!msg || typeof msg.t !== 'string') throw new Error('bad control message');
  switch (msg.t) {
    case 'want':
    case 'ack':
      if (!isIndex(msg.file, n) || !isSize(msg.offset)) throw new Error(`bad ${msg.t} message`);
      break;
    case 'skip':
    case 'ok':
    case 'bad':
      if (!isIndex(msg.file, n)) throw new Error(`bad ${msg.t} message`);
      break;
    case 'end':
      if (!isIndex(msg.file, n) || !/^[0-9a-f]{64}$/.test(msg.sha256 || '')) throw new Error('bad end message');
      break;
    case 'manifest':
    case 'done':
    case 'cancel':
    case 'error':
      break;
    default:
      throw new Error(`unknown control message ${String(msg.t).slice(0, 20)}`);
  }
  return msg;
}

/** "1.5 MB" */
export function bytesText(n) {
  if (!Number.isFinite(n)) return '';
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = -1;
  do {
    v /= 1000;
    i++;
  } while (v >= 1000 && i < units.length - 1);
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** "about 2 minutes left" */
export function etaText(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '';
  if (seconds < 5) return 'a few seconds left';
  if (seconds < 90) return `${Math.round(seconds)} seconds left`;
  if (seconds < 5400) return `about ${Math.round(seconds / 60)} minutes left`;
  return `about ${Math.round(seconds / 3600)} hours left`;
}
