// Where received files go. Each sink opens one writer per file:
//   writer = await sink.open({ parts, size, offset })   (parts: safe path parts, offset: resume point)
//   writer.offset                       where writing starts (0 when this sink cannot resume)
//   await writer.write(arrayBuffer)     resolves when the bytes are handed to storage
//   await writer.commit() → final name  the file verified: keep it under its own name
//   await writer.discard()              remove the partial file
//   writer.keep()                       leave the partial file for a resume (cannot fail)
// Sinks: a folder through the File System Access API (partial files are <name>.hearth-part,
// renamed when verified, and can resume), or a streamed download through the service worker
// (one download per file; a resume restarts the file in progress), or, as a last resort, a
// download built in memory (small files only).

import { numbered, PART_SUFFIX } from './protocol.js';

const MEMORY_LIMIT = 256 * 1024 * 1024;

/** Whether this browser can save into a folder the person picks. */
export function canPickFolder() {
  return typeof window.showDirectoryPicker === 'function';
}

/** Asks the person for a folder (must run from a click). Resolves with a sink, or null if they cancel. */
export async function pickFolderSink() {
  // A test hook: headless browsers cannot click a picker, so tests hand over a folder.
  const given = window.__hearthTransferFolder;
  if (given) return folderSink(typeof given === 'function' ? await given() : given);
  try {
    const dir = await window.showDirectoryPicker({ id: 'hearth-transfer', mode: 'readwrite', startIn: 'downloads' });
    return folderSink(dir);
  } catch (err) {
    if (err?.name === 'AbortError') return null;
    throw err;
  }
}

async function exists(dir, name) {
  try {
    await dir.getFileHandle(name);
    return true;
  } catch {
    try {
      await dir.getDirectoryHandle(name);
      return true;
    } catch {
      return false;
    }
  }
}

/** Saves into a FileSystemDirectoryHandle. */
export function folderSink(root) {
  const taken = new Set(); // names given out in this transfer (their files may not exist yet)
  return {
    kind: 'folder',
    label: root.name,
    async open({ parts, offset = 0, previous }) {
      let dir = root;
      for (const part of parts.slice(0, -1)) dir = await dir.getDirectoryHandle(part, { create: true });
      const base = parts[parts.length - 1];
      // On resume, the same partial file as before.
      let name = previous?.name;
      if (!name) {
        name = base;
        for (let n = 2; taken.has(dirKey(parts, name)) || (await exists(dir, name)) || (await exists(dir, name + PART_SUFFIX)); n++) {
          name = numbered(base, n);
        }
        taken.add(dirKey(parts, name));
      }
      const handle = await dir.getFileHandle(name + PART_SUFFIX, { create: true });
      let writable = previous?.writable;
      let start = 0;
      if (writable && offset > 0) {
        await writable.truncate(offset);
        await writable.seek(offset);
        start = offset;
      } else {
        if (writable) await writable.abort().catch(() => {});
        writable = await handle.createWritable({ keepExistingData: false });
      }
      const writer = {
        name,
        writable,
        offset: start,
        write: (buf) => writable.write(buf),
        async commit() {
          await writable.close();
          let final = name;
          if (typeof handle.move === 'function') {
            await handle.move(final);
          } else {
            // No rename in this browser: copy under the final name.
            const file = await handle.getFile();
            const out = await (await dir.getFileHandle(final, { create: true })).createWritable();
            await file.stream().pipeTo(out);
            await dir.removeEntry(name + PART_SUFFIX);
          }
          return parts.slice(0, -1).concat(final).join('/');
        },
        async discard() {
          await writable.abort().catch(() => {});
          await dir.removeEntry(name + PART_SUFFIX).catch(() => {});
          taken.delete(dirKey(parts, name));
        },
        keep() {},
      };
      return writer;
    },
  };
}

const dirKey = (parts, name) => parts.slice(0, -1).concat(name).join('/');

let registration = null;

/** The download service worker, registered once; null when this browser has none. */
async function downloadWorker() {
  if (!('serviceWorker' in navigator)) return null;
  if (!registration) {
    registration = navigator.serviceWorker.register('/transfer/sw.js', { scope: '/transfer/' }).then(async (reg) => {
      const sw = reg.active || reg.waiting || reg.installing;
      if (sw && sw.state !== 'activated') {
        await new Promise((resolve) => {
          const check = () => {
            if (sw.state === 'activated' || sw.state === 'redundant') resolve();
          };
          sw.addEventListener('statechange', check);
          check();
        });
      }
      return reg.active ? reg : null;
    }).catch(() => null);
  }
  return registration;
}

/** Registers the download worker early so a download can start at once. */
export function prepareDownloads() {
  downloadWorker();
}

/** Streams each file as its own browser download; falls back to memory for small files. */
export async function downloadSink() {
  const reg = await downloadWorker();
  if (!reg) return memorySink();
  return {
    kind: 'download',
    label: 'Downloads',
    async open({ parts, previous }) {
      previous?.discard?.();
      const name = parts.join('_');
      const id = Math.random().toString(36).slice(2) + Date.now().toString(36);
      const channel = new MessageChannel();
      const port = channel.port1;
      let failed = null;
      const opened = new Promise((resolve) => {
        port.onmessage = (e) => {
          if (e.data?.op === 'opened') resolve();
          if (e.data?.op === 'cancelled') failed = new Error('The download was cancelled in the browser.');
        };
      });
      (reg.active || reg.waiting || reg.installing).postMessage({ op: 'open', id, name, size: undefined, port: channel.port2 }, [channel.port2]);
      await opened;
      const frame = document.createElement('iframe');
      frame.hidden = true;
      frame.title = 'download';
      frame.src = '/transfer/dl/' + id;
      document.body.append(frame);
      const cleanup = () => setTimeout(() => frame.remove(), 60000);
      return {
        name,
        offset: 0,
        async write(buf) {
          if (failed) throw failed;
          port.postMessage({ buf }, [buf]); // the caller is done with buf
        },
        async commit() {
          port.postMessage({ op: 'close' });
          cleanup();
          return name;
        },
        async discard() {
          port.postMessage({ op: 'abort', reason: 'discarded' });
          cleanup();
        },
        keep() {
          // A download cannot be reopened: it is dropped, and a resume starts this file again.
          port.postMessage({ op: 'abort', reason: 'interrupted' });
          cleanup();
        },
      };
    },
  };
}

/** Keeps a file in memory and downloads it at the end (browsers with no other way). */
function memorySink() {
  return {
    kind: 'memory',
    label: 'Downloads',
    async open({ parts, size }) {
      if (size > MEMORY_LIMIT) throw new Error('This browser can only receive files up to 256 MB. Try Chrome or Edge for larger files.');
      const name = parts.join('_');
      let chunks = [];
      return {
        name,
        offset: 0,
        async write(buf) {
          chunks.push(buf);
        },
        async commit() {
          const url = URL.createObjectURL(new Blob(chunks));
          chunks = [];
          const a = document.createElement('a');
          a.href = url;
          a.download = name;
          document.body.append(a);
          a.click();
          a.remove();
          setTimeout(() => URL.revokeObjectURL(url), 60000);
          return name;
        },
        async discard() {
          chunks = [];
        },
        keep() {
          chunks = [];
        },
      };
    },
  };
}
