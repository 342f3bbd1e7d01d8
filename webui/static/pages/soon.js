// /app/chat, /app/voice, /app/send: friendly placeholders until those features arrive.

import { h, icon } from '../ui.js';

const SOON = {
  chat: {
    title: 'Chat',
    heading: 'Chat is on its way',
    text: 'Soon you\u2019ll be able to talk with everyone at home here: channels, direct messages and pictures, all kept on this box.',
  },
  voice: {
    title: 'Voice',
    heading: 'Voice rooms are coming',
    text: 'Talk to the household with push-to-talk or an open mic, from any room, without anything leaving home.',
  },
  send: {
    title: 'Send files',
    heading: 'File sending is coming',
    text: 'Drop photos and documents straight onto another phone or laptop at home, like passing them across the table.',
  },
};

export function render(view, ctx, section) {
  const { title, heading, text } = SOON[section];
  document.title = title + ' · Hearth';
  view.append(
    h('h1', { class: 'page-title', tabindex: '-1', text: title }),
    h('div', { class: 'empty', 'data-testid': 'empty-' + section },
      h('div', { class: 'empty-icon' }, icon(section)),
      h('h2', { text: heading }),
      h('p', { class: 'muted', text })));
}
