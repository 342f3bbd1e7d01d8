// /app/search: finds messages by words (all must match), optionally in one conversation or
// from one person. The query lives in the address (?q=&channel=&author=) so Back returns to it.

import { api, ApiError } from '../api.js';
import { avatar, renderSpans } from '../chat/format.js';
import { errorLine, h, Invalid, onSubmit, selectField, show, statusLine, timeEl } from '../ui.js';

export function render(view, ctx) {
  document.title = 'Search \u00b7 Hearth';
  const chat = ctx.chat;
  const params = new URLSearchParams(location.search);
  const error = errorLine('search-error');
  const status = statusLine('search-status');
  const results = h('ol', { class: 'results', 'data-testid': 'search-results' });
  const channelHolder = h('div', { class: 'search-filter' });
  const authorHolder = h('div', { class: 'search-filter' });
  const q = h('input', { type: 'search', id: 'search-q', name: 'q', required: true, autocomplete: 'off', maxlength: 500,
    enterkeyhint: 'search', placeholder: 'Words to find', value: params.get('q') || '' });
  const form = h('form', { id: 'search-form', class: 'search-form', role: 'search', novalidate: true },
    h('div', { class: 'field search-words' }, h('label', { for: 'search-q', text: 'Find messages with' }),
      h('div', { class: 'search-row' }, q,
        h('button', { type: 'submit', class: 'primary', 'data-testid': 'search-submit', text: 'Search' }))),
    channelHolder, authorHolder);
  view.append(
    h('h1', { class: 'page-title', tabindex: '-1', text: 'Search' }),
    h('section', { class: 'card' }, form, error),
    status, results);

  function filters() {
    const chOptions = [['', 'All conversations'],
      ...chat.list('text').map((c) => [c.id, '#' + c.name]),
      ...chat.list('dm').map((c) => [c.id, chat.channelTitle(c)])];
    const people = [...chat.users.values()].sort((a, b) => (a.display_name || a.name).localeCompare(b.display_name || b.name));
    channelHolder.replaceChildren(selectField({ label: 'In', id: 'search-channel', name: 'channel',
      value: params.get('channel') || '', options: chOptions }));
    authorHolder.replaceChildren(selectField({ label: 'From', id: 'search-author', name: 'author',
      value: params.get('author') || '', options: [['', 'Anyone'], ...people.map((u) => [u.name, u.display_name || u.name])] }));
  }

  async function run(text, channel, author) {
    const query = new URLSearchParams({ q: text });
    if (channel) query.set('channel', channel);
    if (author) query.set('author', author);
    history.replaceState(null, '', '/app/search?' + query);
    results.setAttribute('aria-busy', 'true');
    const res = await api('GET', '/search?' + query);
    results.removeAttribute('aria-busy');
    const words = text.toLowerCase().split(/\s+/).filter(Boolean);
    results.replaceChildren(...res.results.map((m) => result(chat, m, words)));
    show(status, res.results.length === 0 ? 'No messages match. Try fewer or other words.'
      : res.results.length === 1 ? '1 message found.' : `${res.results.length} messages found.`);
    status.dataset.count = String(res.results.length);
  }

  onSubmit(form, error, async () => {
    const text = q.value.trim();
    if (!text) throw new Invalid('Type a word or two to look for.', q);
    await run(text, form.elements.namedItem('channel')?.value || '', form.elements.namedItem('author')?.value || '');
  });

  chat.ready.then(() => {
    if (!view.isConnected) return;
    filters();
    const text = (params.get('q') || '').trim();
    if (text) {
      run(text, params.get('channel') || '', params.get('author') || '').catch((err) => {
        if (!(err instanceof ApiError)) throw err;
        show(error, err.message);
      });
    }
  }, () => {});
  q.focus();
  return { ownsFocus: true };
}

function result(chat, m, words) {
  const text = h('span', { class: 'result-text' },
    m.spans?.length ? renderSpans(m.spans, { links: false }) : m.text);
  mark(text, words);
  return h('li', {},
    h('a', { class: 'result', href: `/app/chat/${encodeURIComponent(m.channel)}/${m.seq}`, 'data-testid': 'search-result' },
      avatar(chat.users.get(m.author), { presence: false }),
      h('span', { class: 'result-main' },
        h('span', { class: 'result-meta' },
          h('strong', { text: chat.userName(m.author) }),
          h('span', { class: 'muted', text: m.channel_name && chat.channels.get(m.channel)?.kind !== 'dm'
            ? ' in #' + m.channel_name : ' in ' + chat.channelTitle(chat.channels.get(m.channel)) }),
          ' \u00b7 ', timeEl(m.created)),
        text)));
}

/** Wraps the searched words in <mark> inside el's text (text nodes only). */
function mark(el, words) {
  if (!words.length) return;
  const re = new RegExp(words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'gi');
  const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  const texts = [];
  while (walker.nextNode()) texts.push(walker.currentNode);
  for (const node of texts) {
    const value = node.nodeValue;
    re.lastIndex = 0;
    if (!re.test(value)) continue;
    re.lastIndex = 0;
    const frag = document.createDocumentFragment();
    let last = 0;
    for (const match of value.matchAll(re)) {
      frag.append(value.slice(last, match.index), h('mark', { text: match[0] }));
      last = match.index + match[0].length;
    }
    frag.append(value.slice(last));
    node.replaceWith(frag);
  }
}
