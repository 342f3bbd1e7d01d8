// Join and leave sounds for voice calls, made with WebAudio (no audio files).

let audioCtx = null;

/** Creates (or resumes) the shared AudioContext; call from a user gesture so it may play. */
export function unlockSounds() {
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) return;
  if (!audioCtx) {
    try {
      audioCtx = new Ctx();
    } catch {
      return;
    }
  }
  if (audioCtx.state === 'suspended') audioCtx.resume().catch(() => {});
}

const TUNES = {
  join: [523.25, 783.99], // C5 then G5: up
  leave: [659.25, 440.0], // E5 then A4: down
  self: [392.0, 523.25, 659.25], // you joined
  talk: [880.0], // a short tick when the floor is granted
};

/** Plays a short tone sequence: 'join', 'leave', 'self' or 'talk'. Silent if sound is not available. */
export function playTone(name) {
  const notes = TUNES[name];
  if (!notes || !audioCtx || audioCtx.state !== 'running') return;
  const step = name === 'talk' ? 0.06 : 0.09;
  const start = audioCtx.currentTime + 0.01;
  notes.forEach((freq, i) => {
    const osc = audioCtx.createOscillator();
    const gain = audioCtx.createGain();
    osc.type = 'sine';
    osc.frequency.value = freq;
    const t = start + i * step;
    gain.gain.setValueAtTime(0.0001, t);
    gain.gain.exponentialRampToValueAtTime(0.12, t + 0.012);
    gain.gain.exponentialRampToValueAtTime(0.0001, t + step * 1.4);
    osc.connect(gain).connect(audioCtx.destination);
    osc.start(t);
    osc.stop(t + step * 1.5);
  });
}
