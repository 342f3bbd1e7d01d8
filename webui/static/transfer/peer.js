// Both ends of one data channel of a transfer (PROTOCOL.md 3): the sender streams the files
// the receiver wants, with flow control on bufferedAmountLowThreshold; the receiver writes
// them to a sink, hashes them in the worker, acknowledges every MiB and checks each hash.
// A channel that closes before "done" leaves state behind for a resume on a new channel.

import {
  ACK_EVERY, CHUNK, checkControl, checkManifest, hashWorker, LOW_THRESHOLD, MAX_BUFFERED, newKey, safeParts,
} from './protocol.js';

const READ_AHEAD = 32; // chunks asked of the worker beyond what the channel holds

/** A failure the other side should hear about: { reason } is sent as an error message. */
export class TransferError extends Error {
  constructor(message, reason = 'failed') {
    super(message);
    this.reason = reason;
  }
}

/**
 * The sender's state across channels: files (File objects with .relPath), per-file results.
 * hooks.progress() is called as acks arrive; hooks.file(i) when a file's result is known.
 */
export function createSendState(files) {
  return {
    files,
    manifest: files.map((f) => ({ name: f.relPath || f.name, size: f.size, type: f.type || '', mtime: f.lastModified || 0 })),
    acked: files.map(() => 0),
    result: files.map(() => ''), // '' | ok | bad | skipped
    sentBytes: 0,
  };
}

/**
 * Runs the sender on an open (or opening) data channel. Resolves 'done' when the receiver
 * says done; rejects with TransferError on cancel/error, or resolves 'lost' when the channel
 * closed early (resume later with the same state).
 */
export function runSender(dc, state, hooks) {
  const w = hashWorker();
  dc.binaryType = 'arraybuffer';
  dc.bufferedAmountLowThreshold = LOW_THRESHOLD;
  let current = null; // { index, key, queue:[], asked, eof, hex, offset }
  let finished = false;

  return new Promise((resolve, reject) => {
    const finish = (fn, value) => {
      if (finished) return;
      finished = true;
      stopCurrent();
      dc.onmessage = null;
      dc.onclose = null;
      dc.onbufferedamountlow = null;
      fn(value);
    };
    const sendJSON = (msg) => {
      if (dc.readyState === 'open') dc.send(JSON.stringify(msg));
    };
    hooks.cancel = (reason = 'cancelled') => {
      sendJSON({ t: 'cancel', reason });
      finish(reject, new TransferError('You cancelled the transfer.', 'cancelled'));
      setTimeout(() => dc.close(), 200);
    };
    hooks.abandon = () => finish(resolve, 'lost');

    function stopCurrent() {
      if (!current) return;
      current.unlisten();
      w.post({ op: 'drop', key: current.key });
      current = null;
    }

    function pump() {
      const c = current;
      if (!c || finished) return;
      while (c.queue.length && dc.readyState === 'open' && dc.bufferedAmount < MAX_BUFFERED) {
        const buf = c.queue.shift();
        try {
          dc.send(buf);
        } catch {
          return; // the channel is closing: onclose handles it
        }
        c.offset += buf.byteLength;
        state.sentBytes += buf.byteLength;
      }
      if (c.eof && !c.queue.length && !c.endSent) {
        c.endSent = true;
        sendJSON({ t: 'end', file: c.index, sha256: c.hex });
        return;
      }
      const want = READ_AHEAD - c.queue.length - c.asked;
      if (!c.eof && want >= 8) {
        c.asked += want;
        w.post({ op: 'read-pull', key: c.key, n: want });
      }
    }

    async function startFile(index, offset) {
      stopCurrent();
      const file = state.files[index];
      const key = newKey('s');
      const c = { index, key, queue: [], asked: 0, eof: false, hex: '', offset, endSent: false };
      c.unlisten = w.listen(key, (msg) => {
        if (current !== c) return;
        if (msg.op === 'chunk') {
          c.asked--;
          c.queue.push(msg.buf);
          pump();
        } else if (msg.op === 'eof') {
          c.eof = true;
          c.hex = msg.hex;
          pump();
        } else if (msg.op === 'fail') {
          sendJSON({ t: 'error', reason: 'read_failed' });
          finish(reject, new TransferError(`${file.name} could not be read: ${msg.message}`, 'read_failed'));
        }
      });
      current = c;
      try {
        await w.request({ op: 'read-open', key, file, offset });
      } catch (err) {
        sendJSON({ t: 'error', reason: 'read_failed' });
        finish(reject, new TransferError(`${file.name} could not be read: ${err.message}`, 'read_failed'));
        return;
      }
      if (current === c) pump();
    }

    dc.onbufferedamountlow = pump;
    dc.onclose = () => finish(resolve, 'lost');
    dc.onmessage = (event) => {
      if (finished) return;
      if (typeof event.data !== 'string') return; // the receiver sends no bytes
      let msg;
      try {
        msg = checkControl(JSON.parse(event.data), state.files.length);
      } catch {
        sendJSON({ t: 'error', reason: 'protocol' });
        finish(reject, new TransferError('The receiver sent something Hearth does not understand.', 'protocol'));
        return;
      }
      switch (msg.t) {
        case 'want':
          if (msg.offset > state.files[msg.file].size) {
            sendJSON({ t: 'error', reason: 'protocol' });
            finish(reject, new TransferError('The receiver asked for bytes past the end of a file.', 'protocol'));
            return;
          }
          state.acked[msg.file] = msg.offset;
          hooks.progress?.();
          startFile(msg.file, msg.offset);
          break;
        case 'skip':
          state.result[msg.file] = state.result[msg.file] || 'skipped';
          state.acked[msg.file] = state.files[msg.file].size;
          hooks.file?.(msg.file);
          break;
        case 'ack':
          state.acked[msg.file] = Math.min(msg.offset, state.files[msg.file].size);
          hooks.progress?.();
          break;
        case 'ok':
        case 'bad':
          state.result[msg.file] = msg.t;
          if (msg.t === 'ok') state.acked[msg.file] = state.files[msg.file].size;
          if (current?.index === msg.file) stopCurrent();
          hooks.file?.(msg.file);
          hooks.progress?.();
          break;
        case 'done':
          finish(resolve, 'done');
          setTimeout(() => dc.close(), 500);
          break;
        case 'cancel':
          finish(reject, new TransferError('The receiver cancelled the transfer.', 'cancelled_by_peer'));
          break;
        case 'error':
          finish(reject, new TransferError(msg.reason === 'disk_full'
            ? 'The receiver\u2019s disk is full.' : `The receiver had a problem (${String(msg.reason).slice(0, 40)}).`, 'peer_error'));
          break;
        default:
      }
    };
    const start = () => sendJSON({ t: 'manifest', files: state.manifest, total: state.manifest.reduce((n, f) => n + f.size, 0) });
    if (dc.readyState === 'open') start();
    else dc.addEventListener('open', start, { once: true });
  });
}

/**
 * The receiver's state across channels: the manifest, per-file results and, for the file in
 * progress, its writer, acknowledged offset and the hash state there.
 */
export function createReceiveState(sink) {
  return {
    sink,
    files: null, // [{ name, size, type, parts }]
    result: [], // '' | ok | bad | skipped
    saved: [], // final names of ok files
    written: [], // bytes written per file
    current: -1,
    writer: null,
    checkpoint: null, // { file, offset, hash } at the last ack
  };
}

/**
 * Runs the receiver on a data channel. Resolves 'done' after sending done (or 'lost' when the
 * channel closes early); rejects with TransferError on cancel/error.
 * hooks.manifest(files) is awaited before the first want; hooks.progress(), hooks.file(i).
 */
export function runReceiver(dc, state, hooks) {
  const w = hashWorker();
  dc.binaryType = 'arraybuffer';
  let finished = false;
  let f = null; // the file being received: { index, key, received, written, size, endMsg, writes, nextAck, pendingAcks }
  let chain = Promise.resolve(); // control messages handled in order

  return new Promise((resolve, reject) => {
    const sendJSON = (msg) => {
      if (dc.readyState === 'open') dc.send(JSON.stringify(msg));
    };
    const finish = (fn, value) => {
      if (finished) return;
      finished = true;
      dc.onmessage = null;
      dc.onclose = null;
      fn(value);
    };
    const fail = (err) => {
      const e = err instanceof TransferError ? err : new TransferError(err?.message || String(err), 'write_failed');
      const reason = /quota|space|full/i.test(e.message) || err?.name === 'QuotaExceededError' ? 'disk_full' : e.reason;
      sendJSON({ t: 'error', reason });
      if (reason === 'disk_full') e.message = 'The disk is full: the file could not be saved.';
      dropFile(true);
      finish(reject, e);
    };
    hooks.cancel = (reason = 'cancelled') => {
      sendJSON({ t: 'cancel', reason });
      dropFile(true);
      finish(reject, new TransferError('You cancelled the transfer.', 'cancelled'));
      setTimeout(() => dc.close(), 200);
    };
    hooks.abandon = () => {
      if (f) w.post({ op: 'drop', key: f.key });
      f = null;
      finish(resolve, 'lost');
    };

    function dropFile(discard) {
      if (!f) return;
      w.post({ op: 'drop', key: f.key });
      if (discard && state.writer) {
        state.writer.discard().catch(() => {});
        state.writer = null;
        state.checkpoint = null;
      }
      f = null;
    }

    async function next() {
      const i = state.result.findIndex((r) => !r);
      if (i < 0) {
        sendJSON({ t: 'done' });
        finish(resolve, 'done');
        return;
      }
      const meta = state.files[i];
      let offset = 0;
      let hashState = null;
      const cp = state.checkpoint;
      if (cp && cp.file === i && state.writer) {
        offset = cp.offset;
        hashState = cp.hash;
      }
      const previous = state.current === i ? state.writer : null;
      if (state.writer && !previous) {
        await state.writer.discard().catch(() => {});
      }
      state.writer = await state.sink.open({ parts: meta.parts, size: meta.size, offset, previous });
      if (state.writer.offset !== offset) {
        offset = state.writer.offset; // this sink restarts files
        hashState = null;
      }
      state.current = i;
      if (offset > 0) state.resumedFrom = offset; // for the page (and tests): where it went on
      const key = newKey('r');
      if (hashState) w.post({ op: 'hash-load', key, state: hashState });
      else w.post({ op: 'hash-new', key });
      state.written[i] = offset;
      f = { index: i, key, received: offset, size: meta.size, writes: Promise.resolve(), nextAck: offset + ACK_EVERY };
      state.checkpoint = { file: i, offset, hash: hashState };
      hooks.progress?.();
      sendJSON({ t: 'want', file: i, offset });
    }

    function onBytes(buf) {
      if (!f || f.ending) {
        fail(new TransferError('The sender sent bytes nobody asked for.', 'protocol'));
        return;
      }
      const n = buf.byteLength;
      if (n > CHUNK || f.received + n > f.size) {
        fail(new TransferError('The sender sent more than the file holds.', 'protocol'));
        return;
      }
      const file = f;
      w.post({ op: 'hash-data', key: file.key, buf }); // a copy goes to the worker
      file.received += n;
      const end = file.received;
      let save = null;
      if (end >= file.nextAck && end < file.size) {
        file.nextAck = end + ACK_EVERY;
        save = w.request({ op: 'hash-save', key: file.key }); // the hash state at `end`
      }
      const wrote = state.writer.write(buf);
      file.writes = file.writes.then(() => wrote).then(async () => {
        if (f !== file) return;
        state.written[file.index] = end;
        hooks.progress?.();
        if (save) {
          const { state: hash } = await save;
          if (f !== file) return;
          state.checkpoint = { file: file.index, offset: end, hash };
          sendJSON({ t: 'ack', file: file.index, offset: end });
        }
      });
      file.writes.catch(fail);
    }

    async function onEnd(msg) {
      if (!f || msg.file !== f.index) throw new TransferError('The sender ended a file it was not sending.', 'protocol');
      const file = f;
      file.ending = true;
      if (file.received !== file.size) throw new TransferError('The sender ended a file early.', 'protocol');
      await file.writes;
      const { hex } = await w.request({ op: 'hash-digest', key: file.key });
      if (f !== file) return;
      f = null;
      const meta = state.files[file.index];
      const writer = state.writer;
      state.writer = null;
      state.checkpoint = null;
      if (hex === msg.sha256) {
        const saved = await writer.commit();
        state.result[file.index] = 'ok';
        state.saved[file.index] = saved;
        sendJSON({ t: 'ack', file: file.index, offset: meta.size });
        sendJSON({ t: 'ok', file: file.index });
      } else {
        await writer.discard();
        state.result[file.index] = 'bad';
        state.written[file.index] = 0;
        sendJSON({ t: 'bad', file: file.index, reason: 'hash' });
      }
      hooks.file?.(file.index);
      hooks.progress?.();
      await next();
    }

    async function onManifest(msg) {
      const files = checkManifest(msg);
      if (state.files) {
        // A resume: the same files, or it is not the same transfer.
        const same = files.length === state.files.length && files.every((x, i) => x.size === state.files[i].size);
        if (!same) throw new TransferError('The sender\u2019s files changed since the transfer began.', 'protocol');
        for (let i = 0; i < files.length; i++) {
          if (state.result[i]) sendJSON({ t: 'skip', file: i });
        }
      } else {
        state.files = files.map((x) => ({ name: x.name, size: x.size, type: String(x.type || ''), parts: safeParts(x.name) }));
        state.result = files.map(() => '');
        state.written = files.map(() => 0);
        await hooks.manifest?.(state.files);
      }
      await next();
    }

    async function onControl(msg) {
      switch (msg.t) {
        case 'manifest':
          await onManifest(msg);
          break;
        case 'end':
          await onEnd(msg);
          break;
        case 'cancel':
          dropFile(true);
          finish(reject, new TransferError('The sender cancelled the transfer.', 'cancelled_by_peer'));
          break;
        case 'error':
          dropFile(true);
          finish(reject, new TransferError(msg.reason === 'read_failed'
            ? 'The sender could not read a file.' : `The sender had a problem (${String(msg.reason).slice(0, 40)}).`, 'peer_error'));
          break;
        default:
          throw new TransferError(`The sender sent an unexpected ${msg.t} message.`, 'protocol');
      }
    }

    dc.onclose = () => {
      if (finished) return;
      // Keep what is written for a resume; the bytes past the checkpoint come again.
      if (f) {
        w.post({ op: 'drop', key: f.key });
        f = null;
      }
      finish(resolve, 'lost');
    };
    dc.onmessage = (event) => {
      if (finished) return;
      if (typeof event.data !== 'string') {
        onBytes(event.data);
        return;
      }
      let msg;
      try {
        msg = JSON.parse(event.data);
        checkControl(msg, state.files ? state.files.length : 1e9);
      } catch {
        fail(new TransferError('The sender sent something Hearth does not understand.', 'protocol'));
        return;
      }
      chain = chain.then(() => (finished ? null : onControl(msg))).catch((err) => {
        if (!finished) fail(err);
      });
    };
  });
}
