// genrekit web page: upload a song, play it, and watch its genre; or listen to the microphone.
// Plain JS modules, no build step. Talks to POST /api/predict, GET /api/models and WebSocket /ws/live.
"use strict";

import { drawNow, drawTimeline, movePlayhead, segmentAt, showNow } from "./charts.js";
import { onMicStopped, stopMic } from "./mic.js";
import {
  announce, capitalise, clearError, el, fmtTime, pct, renderSummary, setProgress, setSummaryNote, showError, state,
} from "./ui.js";

// ------------------------------------------------------------------ model info
async function loadModel() {
  try {
    const res = await fetch("/api/models");
    const body = await res.json();
    if (!res.ok) throw new Error(body.detail || res.statusText);
    state.labels = body.labels || [];
    state.limits = body.limits || state.limits;
    const m = body.model || {};
    // accuracy: a number, or named measures ({"held-out test": 0.63, ...})
    const acc = typeof m.accuracy === "number" ? [["accuracy", m.accuracy]] :
      Object.entries(m.accuracy && typeof m.accuracy === "object" ? m.accuracy : {})
        .filter(([k, v]) => typeof v === "number" && !/\b(sd|ECE)\b|share/.test(k)); // accuracies, not spreads or shares
    const accText = acc.map(([k, v]) => (k === "accuracy" ? pct(v) : `${pct(v)} (${k})`)).join(", ");
    el.badge.textContent = `Model: ${m.name || m.architecture || "unknown"}`;
    el.badge.title = [m.description, m.trained_on && `trained on ${m.trained_on}`, m.protocol,
      accText && `accuracy: ${accText}`].filter(Boolean).join("\n") || "The model this server uses";
    el.info.textContent = [`${state.labels.length} genres: ${state.labels.join(", ")}`,
      accText && `measured accuracy ${accText}`].filter(Boolean).join(" · ");
    el.hint.textContent = `MP3, WAV, FLAC, OGG, M4A, Opus… up to ${state.limits.max_upload_mb} MB and ` +
      `${Math.round(state.limits.max_duration_s / 60)} min`;
  } catch (err) {
    el.badge.textContent = "model unavailable";
    showError("Cannot reach the server", `GET /api/models failed: ${err.message}`);
  }
}

// ------------------------------------------------------------------ playback sync
function syncToPlayhead(force = false, at = null) {
  const res = state.result;
  if (!res || state.mode !== "song") return;
  const t = at ?? (el.audio.currentTime || 0);
  el.time.textContent = `${fmtTime(t)} / ${fmtTime(res.duration_s)}`;
  if (res.no_music) return; // no windows, no genre to follow
  const i = segmentAt(t);
  if (i < 0) return;
  const w = res.windows[i];
  const title = `Genre at ${fmtTime(t)} · ${fmtTime(w.start_s)}–${fmtTime(w.end_s)}`;
  if (i !== state.segment || force) {
    state.segment = i;
    drawNow(w.probabilities, title);
    el.timeline.setAttribute("aria-valuenow", String(Math.round(t)));
    el.timeline.setAttribute("aria-valuetext",
      `${fmtTime(t)} of ${fmtTime(res.duration_s)}, window ${i + 1} of ${res.windows.length}: ${w.genre}`);
  } else if (el.nowLabel.textContent !== title) {
    el.nowLabel.textContent = title; // the time moves within a window
  }
  const now = performance.now();
  if (force || now - state.lastPlayhead > 120) {
    state.lastPlayhead = now;
    movePlayhead(t);
  }
}

function frame() {
  syncToPlayhead();
  if (!el.audio.paused && !el.audio.ended) requestAnimationFrame(frame);
}
el.audio.addEventListener("play", () => requestAnimationFrame(frame));
for (const ev of ["timeupdate", "seeked", "loadedmetadata"]) {
  el.audio.addEventListener(ev, () => syncToPlayhead(ev !== "timeupdate"));
}
el.audio.addEventListener("error", () => {
  if (!el.audio.getAttribute("src")) return;
  el.audioNote.textContent = "This browser cannot play this file's format, but its genres are shown below.";
  el.audioNote.hidden = false;
});

function seek(t) {
  try { el.audio.currentTime = t; } catch (_) { /* not seekable yet */ }
  syncToPlayhead(true, t); // at once, even when the browser cannot play the file
}

// The timeline is a slider: arrow keys move to the previous or next window, Home and End to the ends.
el.timeline.addEventListener("keydown", (e) => {
  const res = state.result;
  if (!res || res.no_music || state.mode !== "song" || !res.windows.length) return;
  const n = res.windows.length, cur = Math.max(0, state.segment);
  const to = { ArrowRight: cur + 1, ArrowUp: cur + 1, ArrowLeft: cur - 1, ArrowDown: cur - 1,
               PageUp: cur + 5, PageDown: cur - 5, Home: 0, End: n - 1 }[e.key];
  if (to === undefined) return;
  e.preventDefault();
  seek(state.edges[Math.min(n - 1, Math.max(0, to))] + 0.001);
});

// ------------------------------------------------------------------ upload
function handleFile(file) {
  if (!file) return;
  clearError();
  stopMic();
  const maxBytes = state.limits.max_upload_mb * 1e6;
  if (file.size === 0) return showError("Empty file", `'${file.name}' contains no data.`);
  if (file.size > maxBytes) {
    return showError("File too large", `'${file.name}' is ${(file.size / 1e6).toFixed(1)} MB; ` +
      `this server accepts files up to ${state.limits.max_upload_mb} MB.`);
  }
  if (state.xhr) state.xhr.abort();
  el.audio.pause();
  if (state.objectUrl) URL.revokeObjectURL(state.objectUrl);
  state.objectUrl = URL.createObjectURL(file);
  el.audioNote.hidden = true;
  el.audio.src = state.objectUrl;
  state.result = null;
  el.results.hidden = true;

  const form = new FormData();
  form.append("file", file, file.name);
  const xhr = new XMLHttpRequest();
  state.xhr = xhr;
  xhr.open("POST", "/api/predict?top_k=3");
  xhr.responseType = "json";
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) setProgress(`Uploading ${file.name}…`, e.loaded / e.total);
  };
  xhr.upload.onload = () => setProgress(`Analysing ${file.name}…`, null);
  xhr.onload = () => {
    state.xhr = null;
    setProgress(null);
    const body = xhr.response || {};
    if (xhr.status === 200) return showResult(body, file);
    const retry = xhr.getResponseHeader("Retry-After");
    const detail = (body.detail || xhr.statusText) + (xhr.status === 503 && retry ? ` (try again in ${retry} s)` : "");
    showError(body.error ? capitalise(body.error) : `Error ${xhr.status}`, detail);
    el.audio.removeAttribute("src");
  };
  xhr.onerror = () => {
    state.xhr = null;
    setProgress(null);
    showError("Upload failed", "The server could not be reached, or it closed the connection " +
      "(for example because the file is larger than it accepts).");
  };
  setProgress(`Uploading ${file.name}…`, 0);
  xhr.send(form);
}

// What the song's answer says besides its genre: why there is none, or that the file ends early.
function songNote(res) {
  const notes = [];
  if (res.no_music) notes.push(`No genre: ${res.no_music}.`);
  if (res.truncated) {
    notes.push(res.declared_duration_s == null ? `The file ends early, at ${fmtTime(res.duration_s)}.`
      : `The file ends at ${fmtTime(res.duration_s)} although its header says ${fmtTime(res.declared_duration_s)}: ` +
        "only what it holds was analysed.");
  }
  return notes.join(" ");
}

function songSummary(res) {
  const t = res.timing || {};
  const meta = [`${fmtTime(res.duration_s)} of audio`, !res.no_music && `${res.windows.length} windows`,
    `analysed in ${Math.round(t.predict_ms || 0)} ms`].filter(Boolean).join(" · ");
  renderSummary(res, "Overall genre", meta);
  setSummaryNote(songNote(res));
}

function showSong() {
  const res = state.result;
  el.results.classList.remove("mic-only");
  const timelineWasHidden = el.timelineCard.hidden;
  el.playerCard.hidden = false;
  el.timelineCard.hidden = !!res.no_music;
  if (timelineWasHidden && !res.no_music && el.timeline.layout) Plotly.Plots.resize(el.timeline);
  songSummary(res);
  if (res.no_music) {
    el.nowLabel.textContent = "Genre right now";
    showNow(false, "No music detected, so no genre to show.");
  }
  syncToPlayhead(true);
}
onMicStopped(showSong);

function showResult(res, file) {
  state.result = res;
  state.mode = "song";
  state.segment = -1;
  el.fileName.textContent = file.name;
  el.fileName.title = file.name;
  el.liveBadge.hidden = true;
  el.results.hidden = false;
  el.intro.hidden = true;
  el.inputCard.classList.add("compact");
  el.dropWhat.textContent = "Drop another song";
  el.timelineCard.hidden = !!res.no_music;
  el.timeline.setAttribute("aria-valuemax", String(Math.round(res.duration_s)));
  if (!res.no_music) drawTimeline(res, seek); // drawn visible, to its width
  showSong();
  const figure = el.topPct.textContent;
  announce(`${file.name}: ${res.label}${figure ? `, ${figure}` : ""}. ${songNote(res)}`.trim());
  el.playerCard.scrollIntoView({ block: "nearest" }); // the play button first, on a phone too
}

el.input.addEventListener("change", () => {
  handleFile(el.input.files[0]);
  el.input.value = ""; // choosing the same file again still triggers "change"
});
el.drop.addEventListener("keydown", (e) => {
  if (e.key === "Enter" || e.key === " ") { e.preventDefault(); el.input.click(); }
});
for (const ev of ["dragenter", "dragover"]) {
  el.drop.addEventListener(ev, (e) => { e.preventDefault(); el.drop.classList.add("dragover"); });
}
for (const ev of ["dragleave", "drop"]) {
  el.drop.addEventListener(ev, () => el.drop.classList.remove("dragover"));
}
el.drop.addEventListener("drop", (e) => {
  e.preventDefault();
  handleFile(e.dataTransfer.files[0]);
});
// a file dropped next to the zone should not make the browser leave the page
window.addEventListener("dragover", (e) => e.preventDefault());
window.addEventListener("drop", (e) => e.preventDefault());
el.errorClose.addEventListener("click", clearError);

loadModel();
