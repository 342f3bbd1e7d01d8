// Fetch wrapper for Hearth's JSON API: CSRF header, JSON bodies, readable errors.

const BEFORE_SIGN_IN = '1';
let csrf = BEFORE_SIGN_IN;
let onUnauthorized = () => {};

/** An API failure carrying the server's error code and a message fit for people. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter = 0) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** Remembers the CSRF value from login, setup, invite accept or GET /me; null forgets it. */
export function setCsrf(value) {
  csrf = value || BEFORE_SIGN_IN;
}

/** Sets what happens when a signed-in call answers 401 (the app goes to /login). */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/**
 * Calls /api/v1 + path. Resolves with the decoded body (null for 204).
 * Options: body (sent as JSON); public (a 401 is an ordinary error, not a lost session).
 */
export async function api(method, path, { body, public: isPublic = false } = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin' };
  if (method !== 'GET' && method !== 'HEAD') headers['X-Hearth-CSRF'] = csrf;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch('/api/v1' + path, init);
  } catch {
    throw new ApiError(0, 'network', 'Hearth could not be reached. Check your connection and try again.');
  }
  if (res.ok) return res.status === 204 ? null : res.json();

  const err = await toError(res);
  if (res.status === 401 && !isPublic) onUnauthorized(err);
  throw err;
}

/**
 * Uploads file as the raw body of POST /api/v1 + path with XMLHttpRequest (for progress).
 * Returns { promise, abort }: promise resolves with the decoded body, rejects with ApiError
 * (code 'aborted' after abort()). onProgress(fraction) is called as bytes go out.
 */
export function upload(path, file, { onProgress = () => {} } = {}) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open('POST', '/api/v1' + path);
    xhr.setRequestHeader('X-Hearth-CSRF', csrf);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.responseType = 'text';
    xhr.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener('load', () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        // Not JSON: handled below like any other failure.
      }
      if (xhr.status >= 200 && xhr.status < 300 && data) {
        resolve(data);
        return;
      }
      const message = data?.error?.message || uploadMessage(xhr.status);
      const err = new ApiError(xhr.status, data?.error?.code || 'http_' + xhr.status, message);
      if (xhr.status === 401) onUnauthorized(err);
      reject(err);
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, 'network',
      'The upload did not get through. Check your connection and try again.')));
    xhr.addEventListener('abort', () => reject(new ApiError(0, 'aborted', 'Upload cancelled.')));
    xhr.send(file);
  });
  return { promise, abort: () => xhr.abort() };
}

function uploadMessage(status) {
  if (status === 413) return 'The file is larger than this Hearth accepts.';
  if (status === 507) return 'Your storage for files is full.';
  return fallbackMessage(status);
}

/** The URL of a QR code image for text (signed-in users only). */
export function qrURL(text) {
  return '/api/v1/qr?data=' + encodeURIComponent(text);
}

async function toError(res) {
  let code = 'http_' + res.status;
  let message = '';
  try {
    const data = await res.json();
    code = data?.error?.code || code;
    message = data?.error?.message || '';
  } catch {
    // Not JSON (a proxy page, say): fall back to a generic sentence below.
  }
  const retryAfter = Number.parseInt(res.headers.get('Retry-After') || '', 10) || 0;
  if (!message) message = fallbackMessage(res.status);
  if (res.status === 429 && retryAfter > 0 && !/again/i.test(message)) {
    message += ` You can try again in ${waitWords(retryAfter)}.`;
  }
  return new ApiError(res.status, code, message, retryAfter);
}

function fallbackMessage(status) {
  if (status === 401) return 'Please sign in again.';
  if (status === 403) return 'You are not allowed to do that.';
  if (status === 404) return 'That could not be found.';
  if (status === 429) return 'Too many attempts.';
  if (status >= 500) return 'Hearth ran into a problem. Please try again in a moment.';
  return 'That did not work. Please check and try again.';
}

function waitWords(seconds) {
  if (seconds < 90) return seconds === 1 ? '1 second' : `${seconds} seconds`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minutes`;
}
