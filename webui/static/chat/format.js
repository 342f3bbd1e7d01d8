// Rendering of chat content. Everything people wrote (messages, names, file names, topics)
// goes into the page as text nodes; the server's spans only choose which element holds it.

import { h } from '../ui.js';

const SPAN_TAGS = { b: 'strong', i: 'em', code: 'code', mention: 'span' };

/**
 * Renders message spans into a fragment. Options: links (false renders links as plain text,
 * for places that are links themselves), me (the reader's name: their mentions stand out).
 */
export function renderSpans(spans, { links = true, me = '' } = {}) {
  const out = document.createDocumentFragment();
  for (const span of spans || []) {
    const text = String(span.v ?? '');
    switch (span.t) {
      case 'br':
        out.append(links ? h('br') : ' ');
        break;
      case 'pre':
        out.append(links ? h('pre', { class: 'msg-pre' }, h('code', { text })) : h('code', { text }));
        break;
      case 'link':
        out.append(links && /^https?:\/\//i.test(span.u || '')
          ? h('a', { href: span.u, rel: 'noopener noreferrer', target: '_blank', text })
          : text);
        break;
      case 'mention': {
        const self = me && (text === '@' + me || ['@here', '@channel', '@everyone'].includes(text));
        out.append(h('span', { class: self ? 'mention me' : 'mention', text }));
        break;
      }
      default:
        out.append(SPAN_TAGS[span.t] ? h(SPAN_TAGS[span.t], { text }) : text);
    }
  }
  return out;
}

/** Plain text with line breaks (for messages still in the outbox, before the server parsed them). */
export function plainText(text) {
  const out = document.createDocumentFragment();
  String(text).split('\n').forEach((line, i) => {
    if (i > 0) out.append(h('br'));
    out.append(line);
  });
  return out;
}

/** "12 KB", "3.4 MB". */
export function formatSize(bytes) {
  const n = Number(bytes) || 0;
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

function attachmentURL(a, thumb = false) {
  return '/api/v1/attachments/' + encodeURIComponent(a.id) + (thumb ? '?thumb=1' : '');
}

/** An image (its thumbnail, opening the full picture) or a download chip for any other file. */
export function attachmentEl(a) {
  if (a.thumb) {
    const img = h('img', { class: 'msg-image', src: attachmentURL(a, true), alt: a.name, loading: 'lazy',
      decoding: 'async', 'data-testid': 'attachment-image' });
    if (a.width > 0 && a.height > 0) {
      img.width = a.width;
      img.height = a.height;
    }
    return h('a', { class: 'msg-image-link', href: attachmentURL(a), target: '_blank', rel: 'noopener',
      title: `${a.name} (${formatSize(a.size)})` }, img);
  }
  return h('a', { class: 'file-chip', href: attachmentURL(a), download: a.name, 'data-testid': 'attachment-file' },
    fileIcon(),
    h('span', { class: 'file-name', 'data-testid': 'attachment-name', text: a.name }),
    h('span', { class: 'file-size', text: formatSize(a.size) }));
}

function fileIcon() {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', 'icon');
  svg.setAttribute('aria-hidden', 'true');
  for (const d of ['M14 3H6v18h12V7z', 'M14 3v4h4']) {
    const p = document.createElementNS(ns, 'path');
    p.setAttribute('d', d);
    svg.append(p);
  }
  return svg;
}

export function initials(name) {
  const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || '?').slice(0, 2);
  return letters.toUpperCase();
}

/** One of eight avatar colours, stable for a user id. */
export function hue(id) {
  let n = 0;
  for (const ch of String(id)) n = (n * 31 + ch.codePointAt(0)) >>> 0;
  return 'hue-' + (n % 8);
}

const PRESENCE_WORDS = { online: 'online', idle: 'away', offline: 'offline' };

/** A presence dot with its meaning for screen readers. */
export function presenceDot(state) {
  const s = PRESENCE_WORDS[state] ? state : 'offline';
  return h('span', { class: 'presence', 'data-state': s, 'data-testid': 'presence', title: PRESENCE_WORDS[s] },
    h('span', { class: 'sr-only', text: `(${PRESENCE_WORDS[s]})` }));
}

/** An avatar with initials and a presence dot. */
export function avatar(user, { presence = true, size = '' } = {}) {
  const name = user ? user.display_name || user.name : '?';
  return h('span', { class: `chat-avatar ${hue(user?.id || name)} ${size}`, 'aria-hidden': 'true', 'data-user': user?.id },
    initials(name),
    presence && user ? h('span', { class: 'presence', 'data-state': user.presence || 'offline' }) : null);
}

function validDate(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) || d.getFullYear() < 2000 ? null : d;
}

/** "14:05" or "2:05 PM", as the reader's locale writes times. */
export function clock(iso) {
  const d = validDate(iso);
  return d ? d.toLocaleTimeString(undefined, { hour: 'numeric', minute: '2-digit' }) : '';
}

/** The time without AM/PM ("2:05"), for the narrow margin of grouped messages. */
export function shortClock(iso) {
  const d = validDate(iso);
  if (!d) return '';
  const parts = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' }).formatToParts(d);
  const from = parts.findIndex((p) => p.type === 'hour');
  const to = parts.findIndex((p) => p.type === 'minute');
  return parts.slice(Math.min(from, to), Math.max(from, to) + 1).map((p) => p.value).join('');
}

/** A day's key for grouping ("2026-03-12" in local time). */
export function dayKey(iso) {
  const d = validDate(iso);
  return d ? `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}` : '';
}

/** "Today", "Yesterday", "Monday 9 March", "9 March 2025". */
export function dayLabel(iso) {
  const d = validDate(iso);
  if (!d) return '';
  const today = new Date();
  const start = (x) => new Date(x.getFullYear(), x.getMonth(), x.getDate()).getTime();
  const days = Math.round((start(today) - start(d)) / 86400000);
  if (days === 0) return 'Today';
  if (days === 1) return 'Yesterday';
  if (days > 1 && days < 7) return d.toLocaleDateString(undefined, { weekday: 'long', day: 'numeric', month: 'long' });
  const opts = { day: 'numeric', month: 'long' };
  if (d.getFullYear() !== today.getFullYear()) opts.year = 'numeric';
  return d.toLocaleDateString(undefined, opts);
}

/** A count for a badge: 1…99, then "99+". */
export function countText(n) {
  return n > 99 ? '99+' : String(n);
}
