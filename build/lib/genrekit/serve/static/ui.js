// The page's shared state, its elements, and the small pieces every part uses.
"use strict";

const $ = (id) => document.getElementById(id);

export const el = {
  badge: $("model-badge"), info: $("model-info"), hint: $("drop-hint"),
  drop: $("dropzone"), input: $("file-input"), mic: $("mic-button"), micLabel: $("mic-label"),
  error: $("error"), errorTitle: $("error-title"), errorDetail: $("error-detail"), errorClose: $("error-close"),
  progress: $("progress"), progressText: $("progress-text"), progressBar: $("progress-bar"),
  results: $("results"), summaryLabel: $("summary-label"), topSwatch: $("top-swatch"), topName: $("top-name"),
  topPct: $("top-pct"), runnerUps: $("runner-ups"), fileMeta: $("file-meta"),
  nowLabel: $("now-label"), liveBadge: $("live-badge"), nowChart: $("now-chart"),
  playerCard: $("player-card"), timelineCard: $("timeline-card"), fileName: $("file-name"),
  audio: $("audio"), audioNote: $("audio-note"), time: $("time"),
  timeline: $("timeline-chart"), intro: $("intro"), inputCard: $("input-card"), dropWhat: $("drop-what"),
};

export const state = {
  labels: [], limits: { max_upload_mb: 50, max_duration_s: 900 },
  result: null, centers: [], edges: [], segment: -1, objectUrl: null, xhr: null,
  mode: null, // "song" or "mic"
  mic: null, lastPlayhead: 0,
};
window.genrekit = state; // handy in the browser console (and for tests)

const PALETTE = ["#4f46e5", "#0ea5e9", "#f59e0b", "#ec4899", "#10b981", "#8b5cf6",
                 "#ef4444", "#14b8a6", "#84cc16", "#f97316", "#64748b", "#a855f7"];

export const pct = (p) => `${Math.round(p * 100)}%`;
export const capitalise = (s) => s.charAt(0).toUpperCase() + s.slice(1);

export function fmtTime(s) {
  s = Math.max(0, s || 0);
  const m = Math.floor(s / 60), r = Math.floor(s % 60);
  return `${m}:${String(r).padStart(2, "0")}`;
}

export function color(label) {
  const i = state.labels.indexOf(label);
  return i < 0 ? "#94a3b8" : (i < PALETTE.length ? PALETTE[i] : `hsl(${(i * 47) % 360} 65% 50%)`);
}

export function showError(title, detail) {
  el.errorTitle.textContent = title || "Something went wrong";
  el.errorDetail.textContent = detail || "";
  el.error.hidden = false;
}

export function clearError() { el.error.hidden = true; }

export function setProgress(text, fraction) {
  el.progress.hidden = text == null;
  if (text == null) return;
  el.progressText.textContent = text;
  el.progress.classList.toggle("busy", fraction == null);
  el.progressBar.style.width = fraction == null ? "" : `${Math.round(fraction * 100)}%`;
}

// The big headline: one genre, or the mix when the top genres are close ("blues / jazz"),
// then the runner-ups with their bars. `answer` is an API or live answer: top, headline, probabilities.
export function renderSummary(answer, label, meta) {
  el.summaryLabel.textContent = label;
  const top = answer.top || [];
  const probs = answer.probabilities || {};
  const genres = answer.headline?.genres?.length ? answer.headline.genres : top.slice(0, 1).map((t) => t.genre);
  el.topName.textContent = genres.length ? genres.join(" / ") : "–";
  el.topName.classList.toggle("mixed", genres.length > 1);
  el.topPct.textContent = genres.length > 1 ? `mix · ${genres.map((g) => pct(probs[g] ?? 0)).join(" · ")}`
    : (top[0] ? pct(top[0].probability) : "");
  const stops = genres.map((g, i) => `${color(g)} ${(100 * i) / genres.length}% ${(100 * (i + 1)) / genres.length}%`);
  el.topSwatch.style.background = genres.length ? `linear-gradient(90deg, ${stops.join(", ")})` : "";
  el.runnerUps.replaceChildren(...top.map((t) => {
    const li = document.createElement("li");
    const name = Object.assign(document.createElement("span"), { className: "name", textContent: t.genre });
    const bar = Object.assign(document.createElement("span"), { className: "bar" });
    const fill = document.createElement("i");
    fill.style.width = pct(t.probability);
    fill.style.background = color(t.genre);
    bar.append(fill);
    const p = Object.assign(document.createElement("span"), { className: "pct", textContent: pct(t.probability) });
    li.append(name, bar, p);
    return li;
  }));
  if (meta !== undefined) el.fileMeta.textContent = meta;
}
