// The two Plotly charts: the genres right now (bars) and the whole song (timeline heatmap).
"use strict";

import { color, el, fmtTime, pct, showError, state } from "./ui.js";

const PLOT_CONFIG = { responsive: true, displayModeBar: false };
const FONT = { family: getComputedStyle(document.documentElement).fontFamily, color: "#1c2033", size: 13 };

function plotlyReady() {
  if (window.Plotly) return true;
  showError("Charts unavailable", "plotly.min.js could not be loaded from this server.");
  return false;
}

export function drawNow(probabilities, title) {
  if (!plotlyReady()) return;
  const labels = state.labels.length ? state.labels : Object.keys(probabilities);
  const x = labels.map((g) => probabilities[g] ?? 0);
  const best = x.indexOf(Math.max(...x));
  el.nowLabel.textContent = title;
  Plotly.react(el.nowChart, [{
    type: "bar", orientation: "h", y: labels, x,
    marker: { color: labels.map(color), opacity: labels.map((_, i) => (i === best ? 1 : 0.45)) },
    text: x.map(pct), textposition: "outside", cliponaxis: false,
    hovertemplate: "%{y}: %{x:.1%}<extra></extra>",
  }], {
    font: FONT, margin: { l: 78, r: 36, t: 8, b: 30 }, bargap: 0.28,
    xaxis: { range: [0, 1], tickformat: ".0%", gridcolor: "#eef0f5", zeroline: false, fixedrange: true },
    yaxis: { autorange: "reversed", fixedrange: true, ticksuffix: " " },
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    transition: { duration: 180, easing: "cubic-in-out" },
  }, PLOT_CONFIG);
}

function niceTicks(duration) {
  const steps = [5, 10, 15, 30, 60, 120, 300, 600];
  const step = steps.find((s) => duration / s <= 8) || 900;
  const ticks = [];
  for (let t = 0; t <= duration + 1e-6; t += step) ticks.push(t);
  return ticks;
}

// The timeline window nearest to time t (windows overlap: the nearest centre wins).
export function segmentAt(t) {
  const c = state.centers;
  if (!c.length) return -1;
  let lo = 0, hi = c.length - 1;
  while (lo < hi) { // first center >= t
    const mid = (lo + hi) >> 1;
    if (c[mid] < t) lo = mid + 1; else hi = mid;
  }
  return lo > 0 && t - c[lo - 1] < c[lo] - t ? lo - 1 : lo;
}

// onSeek(t) is called with the start of a clicked cell.
export function drawTimeline(result, onSeek) {
  if (!plotlyReady()) return;
  const segs = result.timeline;
  const labels = state.labels.length ? state.labels : Object.keys(result.probabilities);
  state.centers = segs.map((s) => (s.start_s + s.end_s) / 2);
  // each cell spans from midway after the previous window's centre to midway before the next
  // one's, so that the cell under the playhead is the window nearest to it
  const edges = state.edges = [0, ...state.centers.slice(1).map((c, i) => (c + state.centers[i]) / 2),
    Math.max(result.duration_s, state.centers[state.centers.length - 1] || 0)];
  const z = labels.map((g) => segs.map((s) => s.probabilities[g] ?? 0));
  const text = labels.map(() => segs.map((s) => `${fmtTime(s.start_s)}–${fmtTime(s.end_s)} · top: ${s.label}`));
  const ticks = niceTicks(result.duration_s);
  Plotly.react(el.timeline, [{
    type: "heatmap", x: edges, y: labels, z, text, zmin: 0, zmax: 1,
    colorscale: [[0, "#f7f8fc"], [0.25, "#c7d2fe"], [0.6, "#6366f1"], [1, "#312e81"]],
    showscale: el.timeline.clientWidth > 520, // no room for the colour bar on a phone
    colorbar: { thickness: 10, tickformat: ".0%", outlinewidth: 0, len: 0.9 },
    hovertemplate: "%{y}: %{z:.0%}<br>%{text}<extra></extra>", xgap: 1,
  }], {
    font: FONT, margin: { l: 78, r: 10, t: 6, b: 28 },
    xaxis: { tickvals: ticks, ticktext: ticks.map(fmtTime), fixedrange: true,
             range: [0, Math.max(result.duration_s, 0.1)], zeroline: false },
    yaxis: { autorange: "reversed", fixedrange: true, ticksuffix: " " },
    shapes: [{ type: "line", xref: "x", yref: "paper", x0: 0, x1: 0, y0: 0, y1: 1, line: { color: "#e5484d", width: 2 } }],
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
  }, PLOT_CONFIG).then(() => {
    el.timeline.removeAllListeners?.("plotly_click");
    el.timeline.on("plotly_click", (ev) => {
      const pt = ev.points && ev.points[0];
      if (!pt || !state.result) return;
      const col = Array.isArray(pt.pointIndex) ? pt.pointIndex[1] : segmentAt(pt.x);
      if (col >= 0 && col < state.result.timeline.length) onSeek(state.edges[col] + 0.001);
    });
  });
}

export function movePlayhead(t) {
  if (el.timeline.layout) Plotly.relayout(el.timeline, { "shapes[0].x0": t, "shapes[0].x1": t });
}
