// genrekit web page: upload a song, play it, and watch its genre; or listen to the microphone.
// Plain JS modules, no build step. Talks to POST /api/predict, GET /api/models and WebSocket /ws/live.
"use strict";

import { drawNow, drawTimeline, movePlayhead, segmentAt } from "./charts.js";
import { onMicStopped, stopMic } from "./mic.js";
import { capitalise, clearError, el, fmtTime, pct, renderSummary, setProgress, showError, state } from "./ui.js";

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
        .filter(([, v]) => typeof v === "number");
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
  if (!state.result || state.mode !== "song") return;
  const t = at ?? (el.audio.currentTime || 0);
  el.time.textContent = `${fmtTime(t)} / ${fmtTime(state.result.duration_s)}`;
  const i = segmentAt(t);
  if (i >= 0 && (i !== state.segment || force)) {
    state.segment = i;
    const seg = state.result.timeline[i];
    drawNow(seg.probabilities, `Genre at ${fmtTime(t)} · ${fmtTime(seg.start_s)}–${fmtTime(seg.end_s)}`);
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

function songSummary(res) {
  const t = res.timing || {};
  renderSummary(res, "Overall genre", `${fmtTime(res.duration_s)} of audio · ${res.timeline.length} segments · ` +
    `analysed in ${Math.round(t.predict_ms || 0)} ms`);
}

function showSong() {
  el.results.classList.remove("mic-only");
  el.playerCard.hidden = el.timelineCard.hidden = false;
  songSummary(state.result);
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
  drawTimeline(res, seek);
  showSong();
  if (state.segment < 0 && res.timeline.length) drawNow(res.timeline[0].probabilities, "Genre at 0:00");
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
