// The live microphone: audio to WebSocket /ws/live, its answers to the chart and the summary.
"use strict";

import { drawNow, showNow } from "./charts.js";
import {
  announce, capitalise, clearError, el, fmtTime, renderSummary, setSummaryNote, showError, state,
} from "./ui.js";

// a changed live genre is announced to screen readers at most this often
const ANNOUNCE_EVERY_MS = 5000;

// Called when the microphone stops and a song was loaded before: the page shows the song again.
let showSong = () => {};
export function onMicStopped(fn) { showSong = fn; }

function setMicButton(on) {
  el.mic.setAttribute("aria-pressed", String(on));
  el.micLabel.textContent = on ? "Stop microphone" : "Live microphone";
}

export async function startMic() {
  clearError();
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return showError("Microphone unavailable", "Browsers only allow the microphone on secure pages: open this app " +
      "at http://127.0.0.1 or http://localhost on the machine running it, or serve it over https.");
  }
  const mic = { stopped: false, lastT: null, last: null, said: null, saidAt: -Infinity };
  state.mic = mic;
  setMicButton(true);
  try {
    mic.stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 },
    });
  } catch (err) {
    stopMic(mic);
    return showError("Microphone blocked", err.name === "NotAllowedError"
      ? "Allow this page to use the microphone (the icon in the address bar), then try again."
      : `The microphone could not be opened: ${err.message || err.name}`);
  }
  if (mic.stopped) return stopMic(mic);
  mic.ctx = new AudioContext();
  await mic.ctx.resume();
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  mic.ws = new WebSocket(`${proto}//${location.host}/ws/live`);
  mic.ws.binaryType = "arraybuffer";
  mic.ws.onopen = () => mic.ws.send(JSON.stringify({ sample_rate: mic.ctx.sampleRate }));
  mic.ws.onmessage = (e) => onLiveMessage(mic, e);
  mic.ws.onclose = (e) => {
    if (mic.stopped) return;
    if (el.error.hidden) showError("Live connection closed", e.reason || "The server ended the microphone session.");
    stopMic(mic);
  };
  mic.ws.onerror = () => { if (!mic.stopped) showError("Live connection failed", "Could not open /ws/live on the server."); };

  const send = (samples) => {
    if (mic.ws.readyState === WebSocket.OPEN && mic.ready && mic.ws.bufferedAmount < (1 << 20)) {
      mic.ws.send(samples.buffer);
    }
  };
  const source = mic.ctx.createMediaStreamSource(mic.stream);
  const mute = mic.ctx.createGain();
  mute.gain.value = 0;
  mute.connect(mic.ctx.destination);
  if (mic.ctx.audioWorklet) {
    await mic.ctx.audioWorklet.addModule("/static/mic-worklet.js");
    mic.node = new AudioWorkletNode(mic.ctx, "mic-tap", { numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1] });
    mic.node.port.onmessage = (e) => send(e.data);
  } else { // older browsers
    mic.node = mic.ctx.createScriptProcessor(4096, 1, 1);
    mic.node.onaudioprocess = (e) => send(new Float32Array(e.inputBuffer.getChannelData(0)));
  }
  source.connect(mic.node);
  mic.node.connect(mute);

  state.mode = "mic";
  el.audio.pause();
  el.results.hidden = false;
  el.intro.hidden = true;
  el.liveBadge.hidden = false;
  const hasSong = !!state.result;
  el.playerCard.hidden = !hasSong;
  el.timelineCard.hidden = !hasSong || !!state.result.no_music;
  el.results.classList.toggle("mic-only", !hasSong);
  renderSummary({}, "Live genre", "Listening to the microphone…");
  setSummaryNote("");
  drawNow(Object.fromEntries(state.labels.map((g) => [g, 0])), "Listening…");
  announce("Listening to the microphone");
}

// The live answer's genre, or "no music detected" and no chart at all.
function showLive(msg, title) {
  if (msg.no_music) {
    el.nowLabel.textContent = title;
    showNow(false, "No music detected, so no genre to show.");
  } else {
    drawNow(msg.probabilities, title);
  }
}

// Screen readers hear the live genre when it changes, not every second.
function announceLive(mic, msg) {
  const now = performance.now();
  if (msg.label === mic.said || now - mic.saidAt < ANNOUNCE_EVERY_MS) return;
  mic.said = msg.label;
  mic.saidAt = now;
  announce(`Live genre: ${msg.label}`);
}

function onLiveMessage(mic, e) {
  if (mic.stopped) return;
  let msg;
  try { msg = JSON.parse(e.data); } catch (_) { return; }
  if (msg.error) return showError(capitalise(msg.error), msg.detail);
  if (msg.ready) { mic.ready = true; mic.window = msg.window_s || 3; return; }
  if (!msg.label) return;
  mic.lastT = msg.t;
  mic.last = msg;
  showLive(msg, `Microphone · last ${Math.min(mic.window || 3, msg.t).toFixed(0)} s`);
  renderSummary(msg, "Live genre", `Listening for ${fmtTime(msg.t)} · the genre of the last few seconds`);
  announceLive(mic, msg);
}

export function stopMic(mic = state.mic) {
  if (!mic) return;
  mic.stopped = true;
  if (mic.ws) {
    try { if (mic.ws.readyState === WebSocket.OPEN) mic.ws.send(JSON.stringify({ type: "stop" })); } catch (_) { /* closing */ }
    try { mic.ws.close(1000); } catch (_) { /* closed */ }
  }
  if (mic.stream) mic.stream.getTracks().forEach((t) => t.stop());
  if (mic.ctx) mic.ctx.close().catch(() => {});
  if (state.mic === mic) state.mic = null;
  setMicButton(false);
  el.liveBadge.hidden = true;
  if (state.mode !== "mic") return;
  state.mode = state.result ? "song" : null;
  if (state.result) return showSong();
  // no song to go back to: the last live answer stays, said to be the last
  const heard = mic.lastT == null ? "" : ` after ${fmtTime(mic.lastT)}`;
  renderSummary(mic.last || {}, "Last live genre", `Microphone stopped${heard}`);
  el.nowLabel.textContent = mic.last ? "Microphone · stopped" : "Microphone stopped";
  announce(`Microphone stopped${heard}`);
}

el.mic.addEventListener("click", () => {
  if (state.mic) stopMic(); else startMic().catch((err) => { stopMic(); showError("Microphone failed", String(err.message || err)); });
});
window.addEventListener("pagehide", () => stopMic());
