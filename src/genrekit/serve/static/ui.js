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
  summaryNote: $("summary-note"), styles: $("styles"), nowEmpty: $("now-empty"), announcer: $("announce"),
};

export const state = {
  labels: [], limits: { max_upload_mb: 50, max_duration_s: 900 },
  result: null, centers: [], edges: [], segment: -1, objectUrl: null, xhr: null,
  mode: null, // "song" or "mic"
  mic: null, lastPlayhead: 0,
};
window.genrekit = state; // handy in the browser console (and for tests)

const MAX_STYLES = 8;
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

// Said to screen readers, politely (after what they are reading). The same text twice is said twice.
export function announce(text) {
  el.announcer.textContent = "";
  setTimeout(() => { el.announcer.textContent = text; }, 50);
}

// The headline shown in big type: the server's label ("jazz", "blues / jazz", "jazz (unsure)" or
// "no music detected"), the genres' percentages and the runner-ups with their bars. `answer` is an
// API or live answer (genrekit.schema): label, genres, confident, no_music, top, probabilities.
// Without music there is no genre at all: no name, no percentage, no bars.
export function renderSummary(answer, label, meta) {
  el.summaryLabel.textContent = label;
  const music = !answer.no_music && !!answer.label;
  const genres = music ? answer.genres || [] : [];
  const top = music ? answer.top || [] : [];
  const probs = music ? answer.probabilities || {} : {};
  el.topName.classList.toggle("mixed", genres.length > 1);
  el.topName.classList.toggle("no-music", !!answer.no_music);
  el.topName.classList.toggle("unsure", music && !answer.confident);
  const head = genres.join(" / ");
  if (music && !answer.confident && head && answer.label.startsWith(`${head} `)) {
    // the server's word ("(unsure)") in small type after the genres
    const word = Object.assign(document.createElement("span"),
      { className: "unsure-word", textContent: answer.label.slice(head.length + 1) });
    el.topName.replaceChildren(`${head} `, word);
  } else {
    el.topName.textContent = answer.label || "–";
  }
  el.topPct.textContent = !music ? "" : genres.length > 1
    ? `mix · ${genres.map((g) => pct(probs[g] ?? 0)).join(" · ")}` : pct(answer.probability ?? 0);
  const stops = genres.map((g, i) => `${color(g)} ${(100 * i) / genres.length}% ${(100 * (i + 1)) / genres.length}%`);
  el.topSwatch.hidden = !genres.length;
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
  // the musicnn MSD tags above the server's threshold, as chips (song answers only: live ones have none)
  const styles = music ? answer.styles || [] : [];
  el.styles.hidden = !styles.length;
  el.styles.replaceChildren(...styles.slice(0, MAX_STYLES).map((s) => Object.assign(document.createElement("li"),
    { className: "style-chip", textContent: s.style, title: `${s.style}: ${pct(s.probability)} (musicnn tag)` })));
  if (meta !== undefined) el.fileMeta.textContent = meta;
}

// A line under the headline: why there is no music, or that the file is shorter than it says.
export function setSummaryNote(text) {
  el.summaryNote.textContent = text || "";
  el.summaryNote.hidden = !text;
}
