// The two Plotly charts: the genres right now (bars) and the whole song (its windows as a heatmap,
// under a strip of the smoothed runs of one genre).
"use strict";

import { color, el, fmtTime, pct, showError, state } from "./ui.js";

const PLOT_CONFIG = { responsive: true, displayModeBar: false };
const FONT = { family: getComputedStyle(document.documentElement).fontFamily, color: "#1c2033", size: 13 };
// room right of the bars for an outside label as wide as "100%"
const NOW_MARGIN = { l: 78, r: 52, t: 8, b: 30 };
// room above the heatmap for the strip of runs, and right of it for half the end label ("10:00")
const TIMELINE_MARGIN = { l: 78, r: 26, t: 34, b: 28 };
const STRIP = { y0: 1.04, y1: 1.16 };

function plotlyReady() {
  if (window.Plotly) return true;
  showError("Charts unavailable", "plotly.min.js could not be loaded from this server.");
  return false;
}

// The bars, or in their place a line saying why there are none (no music: no genre to chart).
export function showNow(visible, emptyText = "") {
  const wasHidden = el.nowChart.hidden;
  el.nowChart.hidden = !visible;
  el.nowEmpty.hidden = visible;
  el.nowEmpty.textContent = emptyText;
  if (visible && wasHidden && el.nowChart.layout) Plotly.Plots.resize(el.nowChart);
}

export function drawNow(probabilities, title) {
  el.nowLabel.textContent = title;
  showNow(true);
  if (!plotlyReady()) return;
  const labels = state.labels.length ? state.labels : Object.keys(probabilities);
  const x = labels.map((g) => probabilities[g] ?? 0);
  const best = x.indexOf(Math.max(...x));
  Plotly.react(el.nowChart, [{
    type: "bar", orientation: "h", y: labels, x,
    marker: { color: labels.map(color), opacity: labels.map((_, i) => (i === best ? 1 : 0.45)) },
    text: x.map(pct), textposition: "outside", cliponaxis: false,
    hovertemplate: "%{y}: %{x:.1%}<extra></extra>",
  }], {
    font: FONT, margin: NOW_MARGIN, bargap: 0.28,
    xaxis: { range: [0, 1], tickformat: ".0%", gridcolor: "#eef0f5", zeroline: false, fixedrange: true },
    yaxis: { autorange: "reversed", fixedrange: true, ticksuffix: " " },
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    transition: { duration: 180, easing: "cubic-in-out" },
  }, PLOT_CONFIG);
}

// Round-number ticks, as many as the width allows, and always the end of the song.
function ticks(duration, widthPx) {
  const most = Math.max(2, Math.min(8, Math.floor(widthPx / 64)));
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800];
  const step = steps.find((s) => duration / s <= most) || 3600;
  const out = [];
  for (let t = 0; t < duration - 0.6 * step; t += step) out.push(t); // none crowding the end label
  out.push(duration);
  return out;
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

// The smoothed runs (result.timeline) as coloured blocks above the heatmap, named where they fit.
function runStrip(result, plotWidthPx) {
  const d = Math.max(result.duration_s, 0.1);
  const shapes = result.timeline.map((r) => ({
    type: "rect", xref: "x", yref: "paper", x0: r.start_s, x1: r.end_s, ...STRIP,
    fillcolor: color(r.genre), line: { color: "#ffffff", width: 1 }, layer: "below", // under the playhead
  }));
  const annotations = result.timeline
    .filter((r) => ((r.end_s - r.start_s) / d) * plotWidthPx > 7 * r.genre.length + 8)
    .map((r) => ({
      xref: "x", yref: "paper", x: (r.start_s + r.end_s) / 2, y: (STRIP.y0 + STRIP.y1) / 2, text: r.genre,
      showarrow: false, font: { ...FONT, size: 11, color: "#ffffff" },
    }));
  annotations.push({ xref: "paper", yref: "paper", x: 0, xanchor: "right", y: (STRIP.y0 + STRIP.y1) / 2,
    text: "smoothed ", showarrow: false, font: { ...FONT, size: 11, color: "#636a82" } });
  return { shapes, annotations };
}

// onSeek(t) is called with the start of a clicked cell.
export function drawTimeline(result, onSeek) {
  if (!plotlyReady()) return;
  const wins = result.windows || [];
  const labels = state.labels.length ? state.labels : Object.keys(result.probabilities || {});
  state.centers = wins.map((s) => (s.start_s + s.end_s) / 2);
  // each cell spans from midway after the previous window's centre to midway before the next
  // one's, so that the cell under the playhead is the window nearest to it
  const edges = state.edges = [0, ...state.centers.slice(1).map((c, i) => (c + state.centers[i]) / 2),
    Math.max(result.duration_s, state.centers[state.centers.length - 1] || 0)];
  const z = labels.map((g) => wins.map((s) => s.probabilities[g] ?? 0));
  const text = labels.map(() => wins.map((s) => `${fmtTime(s.start_s)}–${fmtTime(s.end_s)} · top: ${s.genre}`));
  const width = el.timeline.clientWidth;
  const plotWidth = width - TIMELINE_MARGIN.l - TIMELINE_MARGIN.r;
  const tickvals = ticks(result.duration_s, plotWidth);
  const strip = runStrip(result, plotWidth);
  Plotly.react(el.timeline, [{
    type: "heatmap", x: edges, y: labels, z, text, zmin: 0, zmax: 1,
    colorscale: [[0, "#f7f8fc"], [0.25, "#c7d2fe"], [0.6, "#6366f1"], [1, "#312e81"]],
    showscale: false, // Plotly draws the colour bar's gradient through a style attribute, which the CSP forbids
    hovertemplate: "%{y}: %{z:.0%}<br>%{text}<extra></extra>", xgap: 1,
  }], {
    font: FONT, margin: TIMELINE_MARGIN,
    xaxis: { tickvals, ticktext: tickvals.map(fmtTime), fixedrange: true,
             range: [0, Math.max(result.duration_s, 0.1)], zeroline: false },
    yaxis: { autorange: "reversed", fixedrange: true, ticksuffix: " " },
    shapes: [{ type: "line", xref: "x", yref: "paper", x0: 0, x1: 0, y0: 0, y1: STRIP.y1,
               line: { color: "#e5484d", width: 2 } }, ...strip.shapes],
    annotations: strip.annotations,
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
  }, PLOT_CONFIG).then(() => {
    el.timeline.removeAllListeners?.("plotly_click");
    el.timeline.on("plotly_click", (ev) => {
      const pt = ev.points && ev.points[0];
      if (!pt || !state.result) return;
      const col = Array.isArray(pt.pointIndex) ? pt.pointIndex[1] : segmentAt(pt.x);
      if (col >= 0 && col < wins.length) onSeek(state.edges[col] + 0.001);
    });
  });
}

export function movePlayhead(t) {
  if (el.timeline.layout) Plotly.relayout(el.timeline, { "shapes[0].x0": t, "shapes[0].x1": t });
}
