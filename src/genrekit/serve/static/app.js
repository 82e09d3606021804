// genrekit web page: upload a song, play it, and watch its genre; or listen to the microphone.
// Plain JS, no build step. Talks to POST /api/predict, GET /api/models and WebSocket /ws/live.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const el = {
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

  const PALETTE = ["#4f46e5", "#0ea5e9", "#f59e0b", "#ec4899", "#10b981", "#8b5cf6",
                   "#ef4444", "#14b8a6", "#84cc16", "#f97316", "#64748b", "#a855f7"];
  const PLOT_CONFIG = { responsive: true, displayModeBar: false };
  const FONT = { family: getComputedStyle(document.documentElement).fontFamily, color: "#1c2033", size: 13 };

  const state = {
    labels: [], limits: { max_upload_mb: 50, max_duration_s: 900 },
    result: null, centers: [], edges: [], segment: -1, objectUrl: null, xhr: null,
    mode: null, // "song" or "mic"
    mic: null, lastPlayhead: 0,
  };
  window.genrekit = state; // handy in the browser console (and for tests)

  // ------------------------------------------------------------------ helpers
  const pct = (p) => `${Math.round(p * 100)}%`;
  const fmtTime = (s) => {
    s = Math.max(0, s || 0);
    const m = Math.floor(s / 60), r = Math.floor(s % 60);
    return `${m}:${String(r).padStart(2, "0")}`;
  };
  const color = (label) => {
    const i = state.labels.indexOf(label);
    return i < 0 ? "#94a3b8" : (i < PALETTE.length ? PALETTE[i] : `hsl(${(i * 47) % 360} 65% 50%)`);
  };
  const plotlyReady = () => {
    if (window.Plotly) return true;
    showError("Charts unavailable", "plotly.min.js could not be loaded from this server.");
    return false;
  };

  function showError(title, detail) {
    el.errorTitle.textContent = title || "Something went wrong";
    el.errorDetail.textContent = detail || "";
    el.error.hidden = false;
  }
  function clearError() { el.error.hidden = true; }
  el.errorClose.addEventListener("click", clearError);

  function setProgress(text, fraction) {
    el.progress.hidden = text == null;
    if (text == null) return;
    el.progressText.textContent = text;
    el.progress.classList.toggle("busy", fraction == null);
    el.progressBar.style.width = fraction == null ? "" : `${Math.round(fraction * 100)}%`;
  }

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

  // ------------------------------------------------------------------ charts
  function drawNow(probabilities, title) {
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

  function drawTimeline(result) {
    if (!plotlyReady()) return;
    const segs = result.timeline;
    const labels = state.labels.length ? state.labels : Object.keys(result.probabilities);
    state.centers = segs.map((s) => (s.start_s + s.end_s) / 2);
    // windows overlap: each cell spans from midway after the previous window's centre to midway
    // before the next one's, so the cell under the playhead is the window nearest to it
    const edges = state.edges = [0, ...state.centers.slice(1).map((c, i) => (c + state.centers[i]) / 2),
                   Math.max(result.duration_s, state.centers[state.centers.length - 1] || 0)];
    const z = labels.map((g) => segs.map((s) => s.probabilities[g] ?? 0));
    const text = labels.map(() => segs.map((s) => `${fmtTime(s.start_s)}–${fmtTime(s.end_s)} · top: ${s.label}`));
    Plotly.react(el.timeline, [{
      type: "heatmap", x: edges, y: labels, z, text, zmin: 0, zmax: 1,
      colorscale: [[0, "#f7f8fc"], [0.25, "#c7d2fe"], [0.6, "#6366f1"], [1, "#312e81"]],
      showscale: el.timeline.clientWidth > 520, // no room for the colour bar on a phone
      colorbar: { thickness: 10, tickformat: ".0%", outlinewidth: 0, len: 0.9 },
      hovertemplate: "%{y}: %{z:.0%}<br>%{text}<extra></extra>", xgap: 1,
    }], {
      font: FONT, margin: { l: 78, r: 10, t: 6, b: 28 },
      xaxis: {
        tickvals: niceTicks(result.duration_s), ticktext: niceTicks(result.duration_s).map(fmtTime),
        fixedrange: true, range: [0, Math.max(result.duration_s, 0.1)], zeroline: false,
      },
      yaxis: { autorange: "reversed", fixedrange: true, ticksuffix: " " },
      shapes: [{ type: "line", xref: "x", yref: "paper", x0: 0, x1: 0, y0: 0, y1: 1, line: { color: "#e5484d", width: 2 } }],
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    }, PLOT_CONFIG).then(() => {
      el.timeline.removeAllListeners?.("plotly_click");
      el.timeline.on("plotly_click", (ev) => {
        const pt = ev.points && ev.points[0];
        if (!pt || !state.result) return;
        const col = Array.isArray(pt.pointIndex) ? pt.pointIndex[1] : segmentAt(pt.x);
        if (!(col >= 0 && col < state.result.timeline.length)) return;
        seek(state.edges[col] + 0.001); // the start of the clicked cell
      });
    });
  }

  function niceTicks(duration) {
    const steps = [5, 10, 15, 30, 60, 120, 300, 600];
    const step = steps.find((s) => duration / s <= 8) || 900;
    const ticks = [];
    for (let t = 0; t <= duration + 1e-6; t += step) ticks.push(t);
    return ticks;
  }

  function renderSummary(top, label, meta) {
    el.summaryLabel.textContent = label;
    const [first, ...rest] = top;
    el.topName.textContent = first ? first.genre : "–";
    el.topPct.textContent = first ? pct(first.probability) : "";
    el.topSwatch.style.background = first ? color(first.genre) : "";
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

  // ------------------------------------------------------------------ playback sync
  function segmentAt(t) {
    const c = state.centers;
    if (!c.length) return -1;
    let lo = 0, hi = c.length - 1;
    while (lo < hi) { // first center >= t
      const mid = (lo + hi) >> 1;
      if (c[mid] < t) lo = mid + 1; else hi = mid;
    }
    return lo > 0 && t - c[lo - 1] < c[lo] - t ? lo - 1 : lo;
  }

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
      if (el.timeline.layout) Plotly.relayout(el.timeline, { "shapes[0].x0": t, "shapes[0].x1": t });
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
      showError(body.error ? capitalise(body.error) : `Error ${xhr.status}`, body.detail || xhr.statusText);
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
  const capitalise = (s) => s.charAt(0).toUpperCase() + s.slice(1);

  function showResult(res, file) {
    state.result = res;
    state.mode = "song";
    state.segment = -1;
    el.results.classList.remove("mic-only");
    el.playerCard.hidden = el.timelineCard.hidden = false;
    el.fileName.textContent = file.name;
    el.fileName.title = file.name;
    el.liveBadge.hidden = true;
    el.results.hidden = false;
    el.intro.hidden = true;
    el.inputCard.classList.add("compact");
    el.dropWhat.textContent = "Drop another song";
    const t = res.timing || {};
    renderSummary(res.top, "Overall genre",
      `${fmtTime(res.duration_s)} of audio · ${res.timeline.length} segments · analysed in ` +
      `${Math.round((t.decode_ms || 0) + (t.predict_ms || 0))} ms`);
    drawTimeline(res);
    syncToPlayhead(true);
    if (state.segment < 0 && res.timeline.length) {
      drawNow(res.timeline[0].probabilities, "Genre at 0:00");
    }
    el.results.scrollIntoView({ behavior: "smooth", block: "nearest" });
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

  // ------------------------------------------------------------------ live microphone
  async function startMic() {
    clearError();
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return showError("Microphone unavailable", "Browsers only allow the microphone on secure pages: open this app " +
        "at http://127.0.0.1 or http://localhost on the machine running it, or serve it over https.");
    }
    const mic = { stopped: false };
    state.mic = mic;
    setMicButton(true);
    try {
      mic.stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 },
      });
    } catch (err) {
      stopMic();
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
      if (!mic.stopped) {
        showError("Live connection closed", e.reason || "The server ended the microphone session.");
        stopMic(mic);
      }
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
    el.playerCard.hidden = el.timelineCard.hidden = !hasSong;
    el.results.classList.toggle("mic-only", !hasSong);
    renderSummary([], "Live genre", "Listening to the microphone…");
    drawNow(Object.fromEntries(state.labels.map((g) => [g, 0])), "Listening…");
  }

  function onLiveMessage(mic, e) {
    if (mic.stopped) return;
    let msg;
    try { msg = JSON.parse(e.data); } catch (_) { return; }
    if (msg.error) return showError(capitalise(msg.error), msg.detail);
    if (msg.ready) { mic.ready = true; return; }
    if (!msg.probabilities) return;
    drawNow(msg.probabilities, `Microphone · last ${Math.min(3, msg.t).toFixed(0)} s`);
    renderSummary(msg.top, "Live genre", `Listening for ${fmtTime(msg.t)} · the genre of the last few seconds`);
  }

  function stopMic(mic = state.mic) {
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
    if (state.mode === "mic") {
      state.mode = state.result ? "song" : null;
      if (state.result) {
        el.results.classList.remove("mic-only");
        el.playerCard.hidden = el.timelineCard.hidden = false;
        const r = state.result;
        renderSummary(r.top, "Overall genre", `${fmtTime(r.duration_s)} of audio · ${r.timeline.length} segments`);
        syncToPlayhead(true);
      }
    }
  }

  function setMicButton(on) {
    el.mic.setAttribute("aria-pressed", String(on));
    el.micLabel.textContent = on ? "Stop microphone" : "Live microphone";
  }

  el.mic.addEventListener("click", () => {
    if (state.mic) stopMic(); else startMic().catch((err) => { stopMic(); showError("Microphone failed", String(err.message || err)); });
  });
  window.addEventListener("pagehide", () => stopMic());

  loadModel();
})();
