// Small DOM helpers. Text always goes in through textContent, never as HTML.

import { ApiError } from './api.js';

/**
 * Creates an element. props: class, text, on<event> handlers, and any attribute
 * (true sets an empty attribute, false/null/undefined leaves it out).
 * Children are nodes or strings (added as text); falsy children are skipped.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === false || value === null || value === undefined) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else el.setAttribute(key, value === true ? '' : String(value));
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

const ICONS = {
  chat: ['M21 12a8 8 0 0 1-11.6 7.1L4 20l1.1-4.6A8 8 0 1 1 21 12z'],
  voice: ['M12 3a3 3 0 0 0-3 3v6a3 3 0 0 0 6 0V6a3 3 0 0 0-3-3z', 'M5 11a7 7 0 0 0 14 0', 'M12 18v3'],
  send: ['M12 15V4', 'M7 9l5-5 5 5', 'M5 20h14'],
  profile: ['M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8z', 'M4 21a8 8 0 0 1 16 0'],
  devices: ['M5 5h14v10H5z', 'M2 19h20'],
  connect: ['M8 3h8v18H8z', 'M11 18h2', 'M3 9a9 9 0 0 1 0 6', 'M21 9a9 9 0 0 0 0 6'],
  admin: ['M12 3l8 3v6c0 5-3.5 8-8 9-4.5-1-8-4-8-9V6z', 'M9 12l2 2 4-4'],
  signout: ['M14 4h5v16h-5', 'M10 8l-4 4 4 4', 'M6 12h10'],
  flame: ['M12 21c-3.9 0-7-2.7-7-6.5 0-3.3 2.4-5.4 4-7.5.4 1.8 1.3 3 2.6 3.6C11.4 7.2 12.8 4.6 15 3c.2 2.9 4 5.8 4 11 0 4-3.1 7-7 7z'],
  search: ['M11 18a7 7 0 1 0 0-14 7 7 0 0 0 0 14z', 'M20 20l-4-4'],
  bell: ['M6 16V11a6 6 0 0 1 12 0v5l2 2H4z', 'M10 21h4'],
  plus: ['M12 5v14', 'M5 12h14'],
  gear: ['M12 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6z',
    'M19.4 13a7.5 7.5 0 0 0 0-2l2-1.5-2-3.5-2.4 1a7.5 7.5 0 0 0-1.7-1L15 3.5h-4l-.3 2.5a7.5 7.5 0 0 0-1.7 1l-2.4-1-2 3.5 2 1.5a7.5 7.5 0 0 0 0 2l-2 1.5 2 3.5 2.4-1a7.5 7.5 0 0 0 1.7 1l.3 2.5h4l.3-2.5a7.5 7.5 0 0 0 1.7-1l2.4 1 2-3.5z'],
  back: ['M15 5l-7 7 7 7'],
  attach: ['M20 11.5l-8 8a5 5 0 0 1-7-7l8.5-8.5a3.3 3.3 0 0 1 4.7 4.7L9.7 17a1.7 1.7 0 0 1-2.4-2.4L15 7'],
  post: ['M4 12l16-8-6 16-2.5-6.5z', 'M11.5 13.5L20 4'],
  smile: ['M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z', 'M8.5 14a4 4 0 0 0 7 0', 'M9 9.5h.01', 'M15 9.5h.01'],
  reply: ['M9 14l-5-5 5-5', 'M4 9h10a6 6 0 0 1 6 6v4'],
  edit: ['M4 20h4L19 9l-4-4L4 16z', 'M13 7l4 4'],
  trash: ['M4 7h16', 'M9 7V4h6v3', 'M6 7l1 13h10l1-13'],
  more: ['M5 12h.01', 'M12 12h.01', 'M19 12h.01'],
  hash: ['M5 9h15', 'M4 15h15', 'M10 3L8 21', 'M16 3l-2 18'],
  lock: ['M6 11h12v10H6z', 'M8 11V8a4 4 0 0 1 8 0v3'],
  close: ['M6 6l12 12', 'M18 6L6 18'],
  down: ['M12 5v14', 'M6 13l6 6 6-6'],
  people: ['M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8z', 'M2 21a7 7 0 0 1 14 0', 'M16 3.5a4 4 0 0 1 0 7', 'M18 14a7 7 0 0 1 4 7'],
};

/** A decorative line icon from the set above (hidden from assistive technology). */
export function icon(name) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', 'icon');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  for (const d of ICONS[name]) {
    const path = document.createElementNS(ns, 'path');
    path.setAttribute('d', d);
    svg.append(path);
  }
  return svg;
}

/** A labelled input. Options: label, hint, and input attributes (id and name required). */
export function field({ label, hint, ...input }) {
  const hintId = hint ? input.id + '-hint' : null;
  const control = h('input', { ...input, 'aria-describedby': hintId });
  return h('div', { class: 'field' },
    h('label', { for: input.id, text: label }),
    control,
    hint && h('p', { class: 'hint', id: hintId, text: hint }),
  );
}

/** A select with a label. options: [[value, text], ...]. */
export function selectField({ label, options, value, ...attrs }) {
  const select = h('select', attrs,
    options.map(([v, text]) => h('option', { value: v, selected: v === value, text })));
  return h('div', { class: 'field' }, h('label', { for: attrs.id, text: label }), select);
}

/** An error line for a form, announced by screen readers when it is filled. */
export function errorLine(testid) {
  return h('p', { class: 'form-error', role: 'alert', 'data-testid': testid, hidden: true });
}

/** A success line for a form, announced politely. */
export function statusLine(testid) {
  return h('p', { class: 'form-status', role: 'status', 'data-testid': testid });
}

/** A mistake in what the person typed, found before asking the server. */
export class Invalid extends Error {
  constructor(message, control) {
    super(message);
    this.control = control;
  }
}

export function show(line, message) {
  line.textContent = message;
  line.hidden = !message;
}

/**
 * Runs action(form) on submit with the submit button disabled meanwhile, and puts an
 * ApiError's or Invalid's message into the error line. Other errors are bugs: rethrown.
 */
export function onSubmit(form, errorEl, action) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    show(errorEl, '');
    const buttons = form.querySelectorAll('button');
    buttons.forEach((b) => { b.disabled = true; });
    form.setAttribute('aria-busy', 'true');
    try {
      await action(form);
    } catch (err) {
      if (!(err instanceof ApiError) && !(err instanceof Invalid)) throw err;
      show(errorEl, err.message);
      err.control?.focus();
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
      form.removeAttribute('aria-busy');
    }
  });
}

/** The value of a form control by name, trimmed unless it is a password. */
export function value(form, name) {
  const control = form.elements.namedItem(name);
  return control.type === 'password' ? control.value : control.value.trim();
}

const NAME_RE = /^[a-z0-9._-]{1,32}$/;

/** Checks the account fields shared by setup, join and add-user; returns the cleaned name. */
export function checkAccount(form, { confirm = true } = {}) {
  const nameInput = form.elements.namedItem('name');
  const name = nameInput.value.trim().toLowerCase();
  if (!NAME_RE.test(name)) {
    throw new Invalid('Names use 1 to 32 lowercase letters, digits, dots, dashes or underscores.', nameInput);
  }
  checkPassword(form, 'password', confirm ? 'confirm' : null);
  return name;
}

/** Checks a new password (and its repeat, when confirmName is given). */
export function checkPassword(form, passwordName, confirmName) {
  const password = form.elements.namedItem(passwordName);
  if (password.value.length < 8) throw new Invalid('Passwords need at least 8 characters.', password);
  if (!confirmName) return;
  const confirm = form.elements.namedItem(confirmName);
  if (confirm.value !== password.value) throw new Invalid('The two passwords do not match.', confirm);
}

function parseTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) || d.getFullYear() < 2000 ? null : d;
}

/** "12 Mar 2026, 14:05", or a dash for a missing time. */
export function formatTime(iso) {
  const d = parseTime(iso);
  return d ? d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }) : '—';
}

const UNITS = [['day', 86400], ['hour', 3600], ['minute', 60]];

/** "5 minutes ago", "in 2 days", "just now". */
function relativeTime(iso) {
  const d = parseTime(iso);
  if (!d) return '—';
  const seconds = (d.getTime() - Date.now()) / 1000;
  const fmt = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size) return fmt.format(Math.round(seconds / size), unit);
  }
  return 'just now';
}

/** A <time> element showing a relative time, with the full time as tooltip. */
export function timeEl(iso) {
  return h('time', { datetime: iso, title: formatTime(iso), text: relativeTime(iso) });
}

/** The centred card used by the setup, sign-in and join pages. */
export function authPage(title, ...children) {
  return h('main', { class: 'auth', id: 'main' },
    h('p', { class: 'brand auth-brand' }, icon('flame'), 'Hearth'),
    h('section', { class: 'card', 'aria-labelledby': 'page-title' },
      h('h1', { id: 'page-title', tabindex: '-1', text: title }),
      ...children));
}

/**
 * A table whose rows become cards on narrow screens (each cell labelled by data-label).
 * headings are strings; a last column for actions is added with a hidden heading.
 */
export function table(testid, headings, rows) {
  const ths = headings.map((text) => h('th', { scope: 'col', text }));
  ths.push(h('th', { scope: 'col' }, h('span', { class: 'sr-only', text: 'Actions' })));
  return h('table', { class: 'table', 'data-testid': testid },
    h('thead', {}, h('tr', {}, ths)),
    h('tbody', {}, rows));
}

export function cell(label, ...content) {
  return h('td', { 'data-label': label }, ...content);
}
