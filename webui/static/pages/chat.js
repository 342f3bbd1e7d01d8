// /app/chat[/CHANNEL[/SEQ]]: conversations. On a phone /app/chat is the list of
// conversations and a conversation is its own screen; from 48rem up both show side by side.

import { ApiError } from '../api.js';
import { dmDialog, newChannelDialog, settingsDialog } from '../chat/dialogs.js';
import { avatar, countText, presenceDot } from '../chat/format.js';
import { createComposer } from '../chat/composer.js';
import { createMessageList } from '../chat/messages.js';
import { h, icon } from '../ui.js';

const WIDE = '(min-width: 48rem)';

export function render(view, ctx, section, rest = [], { landing = false } = {}) {
  const chat = ctx.chat;
  let channelId = '';
  let errorTimer = 0;

  // ---- Sidebar ----
  const lists = {
    text: h('ul', { class: 'conv-list', 'data-testid': 'channel-list' }),
    dm: h('ul', { class: 'conv-list', 'data-testid': 'dm-list' }),
    voice: h('ul', { class: 'conv-list', 'data-testid': 'voice-list' }),
  };
  const links = new Map(); // channel → { li, a }
  const newChannel = h('button', { type: 'button', class: 'icon-button small', 'data-testid': 'new-channel',
    'aria-label': 'New channel', title: 'New channel' }, icon('plus'));
  const newDM = h('button', { type: 'button', class: 'icon-button small', 'data-testid': 'new-dm',
    'aria-label': 'New message', title: 'New message' }, icon('plus'));
  const voiceSection = h('section', { class: 'side-section', 'aria-labelledby': 'side-voice' },
    h('div', { class: 'side-title' }, h('h2', { id: 'side-voice', text: 'Voice' })), lists.voice);
  const side = h('nav', { class: 'chat-side', 'aria-label': 'Conversations' },
    h('div', { class: 'side-head' }, h('h1', { class: 'page-title', tabindex: '-1', text: 'Chat' })),
    h('section', { class: 'side-section', 'aria-labelledby': 'side-channels' },
      h('div', { class: 'side-title' }, h('h2', { id: 'side-channels', text: 'Channels' }), newChannel), lists.text),
    h('section', { class: 'side-section', 'aria-labelledby': 'side-dms' },
      h('div', { class: 'side-title' }, h('h2', { id: 'side-dms', text: 'Direct messages' }), newDM), lists.dm),
    voiceSection);

  function linkContent(ch) {
    const title = chat.channelTitle(ch);
    let lead;
    if (ch.kind === 'dm') {
      const others = (ch.members || []).filter((id) => id !== chat.me.id);
      lead = others.length === 1 ? avatar(chat.users.get(others[0]), { size: 'small' })
        : h('span', { class: 'conv-icon', 'aria-hidden': 'true' }, icon('people'));
    } else {
      lead = h('span', { class: 'conv-icon', 'aria-hidden': 'true' }, icon(ch.voice ? 'voice' : ch.kind === 'private' ? 'lock' : 'hash'));
    }
    const name = ch.kind === 'dm' ? title : ch.name;
    const parts = [lead, h('span', { class: 'conv-name', text: name })];
    if (ch.kind === 'private') parts.push(h('span', { class: 'sr-only', text: ' (private)' }));
    if (!ch.voice) {
      if (ch.mentions > 0) {
        parts.push(h('span', { class: 'count mentions', 'data-testid': 'mention-badge' },
          h('span', { 'aria-hidden': 'true', text: '@' + countText(ch.mentions) }),
          h('span', { class: 'sr-only', text: `, ${ch.mentions} ${ch.mentions === 1 ? 'mention' : 'mentions'}` })));
      }
      if (ch.unread > 0) {
        parts.push(h('span', { class: 'count', 'data-testid': 'unread-badge' },
          h('span', { 'aria-hidden': 'true', text: countText(ch.unread) }),
          h('span', { class: 'sr-only', text: `, ${ch.unread >= 100 ? 'over 99' : ch.unread} unread` })));
      }
    }
    return parts;
  }

  function drawSide() {
    const seen = new Set();
    for (const kind of ['text', 'dm', 'voice']) {
      const wanted = chat.list(kind).map((ch) => {
        seen.add(ch.id);
        let entry = links.get(ch.id);
        if (!entry) {
          const a = h('a', { class: 'conv-link', 'data-channel': ch.id });
          entry = { li: h('li', {}, a), a };
          links.set(ch.id, entry);
        }
        const { a } = entry;
        a.href = ch.voice ? '/app/voice' : '/app/chat/' + encodeURIComponent(ch.id);
        a.dataset.testid = ch.voice ? 'voice-link' : 'channel-link';
        a.dataset.name = ch.kind === 'dm'
          ? (ch.members || []).filter((id) => id !== chat.me.id).map((id) => chat.users.get(id)?.name || '').join(',')
          : ch.name;
        a.classList.toggle('unread', ch.unread > 0 || ch.mentions > 0);
        if (ch.id === channelId) a.setAttribute('aria-current', 'page');
        else a.removeAttribute('aria-current');
        a.replaceChildren(...linkContent(ch));
        return entry.li;
      });
      const ul = lists[kind];
      wanted.forEach((li, i) => {
        if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] || null);
      });
      while (ul.children.length > wanted.length) ul.lastElementChild.remove();
      if (kind === 'dm' && !wanted.length) {
        ul.append(h('li', { class: 'muted small side-empty', text: 'No conversations yet.' }));
      }
    }
    for (const id of [...links.keys()]) if (!seen.has(id)) links.delete(id);
    voiceSection.hidden = lists.voice.children.length === 0;
  }

  // ---- Conversation ----
  const title = h('h2', { id: 'conv-title', class: 'conv-title', tabindex: '-1', 'data-testid': 'conv-title' });
  const topic = h('p', { class: 'conv-topic', 'data-testid': 'conv-topic' });
  const settings = h('button', { type: 'button', class: 'icon-button', 'data-testid': 'channel-settings',
    'aria-label': 'Channel settings', title: 'Channel settings' }, icon('gear'));
  const head = h('header', { class: 'conv-head' },
    h('a', { class: 'icon-button back', href: '/app/chat', 'data-testid': 'back', 'aria-label': 'All conversations' }, icon('back')),
    h('div', { class: 'conv-titles' }, title, topic),
    settings);
  const errorBox = h('div', { class: 'chat-error', role: 'alert', 'data-testid': 'chat-error', hidden: true });
  const typing = h('p', { class: 'typing', 'data-testid': 'typing' });
  const announcer = h('div', { class: 'sr-only', 'aria-live': 'polite', 'data-testid': 'announcer' });
  const overlay = h('div', { class: 'drop-overlay', hidden: true, 'aria-hidden': 'true' },
    h('p', {}, icon('attach'), 'Drop files to send them'));

  function onError(message) {
    clearTimeout(errorTimer);
    errorBox.replaceChildren(h('span', { text: message }),
      h('button', { type: 'button', class: 'icon-button small', 'aria-label': 'Dismiss', onclick: () => {
        errorBox.hidden = true;
      } }, icon('close')));
    errorBox.hidden = false;
    errorTimer = setTimeout(() => {
      errorBox.hidden = true;
    }, 10000);
  }

  const messages = createMessageList({
    chat,
    onReply: (m) => composer.reply(m),
    onError,
    announce: (text) => {
      if (document.visibilityState === 'visible') announcer.textContent = text;
    },
  });
  const composer = createComposer({
    chat, onError, editLast: () => messages.editLast(), onSent: () => messages.scrollToBottom(),
  });
  const conversation = h('div', { class: 'conversation' }, head, errorBox, messages.el, typing, composer.el, overlay, announcer);
  const placeholder = h('div', { class: 'conv-placeholder', 'data-testid': 'conv-placeholder' });
  const main = h('section', { class: 'chat-main', 'aria-labelledby': 'conv-title' }, conversation, placeholder);
  const root = h('div', { class: 'chat', 'data-mode': 'list', 'data-testid': 'chat' }, side, main);
  view.classList.add('view-chat');
  view.append(root);

  function drawHead() {
    const ch = chat.channels.get(channelId);
    if (!ch) return;
    const text = chat.channelTitle(ch);
    if (ch.kind === 'dm') {
      const others = (ch.members || []).filter((id) => id !== chat.me.id);
      const one = others.length === 1 ? chat.users.get(others[0]) : null;
      title.replaceChildren(...[h('span', { class: 'conv-title-text', text }), one && presenceDot(one.presence)].filter(Boolean));
      topic.textContent = one ? `@${one.name}` : `${others.length + 1} people`;
    } else {
      title.replaceChildren(ch.kind === 'private' ? icon('lock') : icon('hash'), h('span', { class: 'conv-title-text', text: ch.name }));
      topic.textContent = ch.topic || '';
    }
    topic.hidden = !topic.textContent;
    settings.hidden = ch.kind === 'dm';
    document.title = `${text} \u00b7 Hearth`;
  }

  function drawTyping() {
    const names = chat.typingIn(channelId).map((id) => chat.userName(id));
    typing.textContent = names.length === 0 ? ''
      : names.length === 1 ? `${names[0]} is typing\u2026`
        : names.length === 2 ? `${names[0]} and ${names[1]} are typing\u2026`
          : 'Several people are typing\u2026';
  }

  function showPlaceholder(heading, text) {
    conversation.hidden = true;
    placeholder.hidden = false;
    placeholder.replaceChildren(h('div', { class: 'empty' },
      h('div', { class: 'empty-icon' }, icon('chat')),
      h('h2', { text: heading }),
      h('p', { class: 'muted', text })));
  }

  const wide = () => matchMedia(WIDE).matches;

  async function update(params = [], opts = {}) {
    const [id = '', seqText = ''] = params;
    try {
      await chat.ready;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      showPlaceholder('Chat could not be loaded', err.message);
      return;
    }
    if (!view.isConnected) return;
    if (!id) {
      const target = opts.landing ? chat.landing() : wide() ? chat.channels.get(chat.lastOpen) || chat.landing() : null;
      if (target) {
        ctx.navigate('/app/chat/' + encodeURIComponent(target.id), { replace: true });
        return;
      }
      channelId = '';
      messages.hide();
      root.dataset.mode = 'list';
      document.title = 'Chat \u00b7 Hearth';
      drawSide();
      showPlaceholder('Pick a conversation', 'Choose a channel or a person on the left, or start something new.');
      side.querySelector('h1').focus();
      return;
    }
    const ch = chat.channels.get(id);
    root.dataset.mode = 'conversation';
    if (!ch || ch.voice) {
      channelId = '';
      messages.hide();
      drawSide();
      document.title = 'Not found \u00b7 Hearth';
      showPlaceholder('This conversation isn\u2019t here',
        'It may have been removed, or you are not a member. Pick another one from the list.');
      return;
    }
    const changed = id !== channelId;
    channelId = id;
    chat.lastOpen = id;
    conversation.hidden = false;
    placeholder.hidden = true;
    drawSide();
    drawHead();
    drawTyping();
    composer.show(id);
    await messages.show(id);
    const seq = Number.parseInt(seqText, 10);
    if (seq > 0) await messages.jumpTo(seq);
    else if (changed) {
      if (wide() && matchMedia('(hover: hover)').matches) composer.focus();
      else title.focus();
    }
  }

  newChannel.addEventListener('click', async () => {
    const ch = await newChannelDialog(chat);
    if (ch) ctx.navigate('/app/chat/' + encodeURIComponent(ch.id));
    else newChannel.focus();
  });
  newDM.addEventListener('click', async () => {
    const ch = await dmDialog(chat);
    if (ch) ctx.navigate('/app/chat/' + encodeURIComponent(ch.id));
    else newDM.focus();
  });
  settings.addEventListener('click', async () => {
    const ch = chat.channels.get(channelId);
    if (!ch) return;
    await settingsDialog(chat, ch);
    settings.focus();
  });

  // Files dropped anywhere on the conversation are attached.
  let dragDepth = 0;
  const hasFiles = (event) => [...(event.dataTransfer?.types || [])].includes('Files');
  main.addEventListener('dragenter', (event) => {
    if (!hasFiles(event) || !channelId) return;
    dragDepth++;
    overlay.hidden = false;
  });
  main.addEventListener('dragover', (event) => {
    if (!hasFiles(event) || !channelId) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
  });
  main.addEventListener('dragleave', (event) => {
    if (!hasFiles(event)) return;
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) overlay.hidden = true;
  });
  main.addEventListener('drop', (event) => {
    if (!hasFiles(event) || !channelId) return;
    event.preventDefault();
    dragDepth = 0;
    overlay.hidden = true;
    composer.addFiles([...event.dataTransfer.files]);
  });

  const offs = [
    chat.on('channels', () => {
      drawSide();
      if (channelId) drawHead();
    }),
    chat.on('users', () => {
      drawSide();
      if (channelId) drawHead();
    }),
    chat.on('typing', (d) => {
      if (d.channel === channelId) drawTyping();
    }),
    chat.on('removed', (d) => {
      if (d.channel !== channelId) return;
      ctx.navigate('/app/chat', { replace: true });
      onError('You no longer have access to that conversation.');
    }),
  ];

  update(rest, { landing });
  return {
    ownsFocus: true,
    update,
    destroy() {
      for (const off of offs) off();
      messages.destroy();
      composer.destroy();
      clearTimeout(errorTimer);
    },
  };
}
