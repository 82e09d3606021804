"""One answer for one input, the same everywhere: CLI JSON and JSON lines, CSV, the table, REST and the page.

A prediction is said in three ways, and only three:

- a genre, confident: ``"jazz"``;
- a genre the model is not sure of: ``"jazz (unsure)"`` (``confident`` false);
- no genre at all: ``"no music detected"`` (silence, noise, too short, not audio; ``no_music`` says why),
  with no ``top`` list, no probabilities and no timeline.

:func:`prediction_json` builds the one JSON object (see its fields); the timeline people read is
:func:`timeline_runs`: the windows' probabilities smoothed over a few windows, merged into runs of one
genre, with runs shorter than a minimum absorbed by their neighbours. Raw windows stay available.
Values are not rounded except times (to the millisecond, since windows are computed from sample
counts); display rounds the rest.

This module is light (no numpy): results are read through their attributes.
"""

from __future__ import annotations

from dataclasses import dataclass

NO_MUSIC = "no music detected"
UNSURE = "unsure"

# genres within this many points of probability of the top one are shown with it: a song in three
# equal parts reads "blues / jazz / rock", not "blues"
MIX_MARGIN = 0.15
MIX_MAX = 3
DEFAULT_STYLE_THRESHOLD = 0.25  # a style (musicnn MSD tag) is listed from this probability on
NAME_TAGS = ("artist", "album", "title")  # what a prediction of a file says of it, from its tags


@dataclass(frozen=True)
class TimelineConfig:
    """How the timeline of a song is read from its windows.

    Parameters
    ----------
    smooth_windows : each window's probabilities are averaged with its neighbours' over this many
        windows (1: no smoothing)
    min_run_s : a run of one genre shorter than this is merged into a neighbouring run (0: keep all)
    """

    smooth_windows: int = 3
    min_run_s: float = 6.0


def headline(top: list[tuple[str, float]]) -> list[str]:
    """The genres to show in big type: the top one, or the mix of those within :data:`MIX_MARGIN` of it.

    Parameters
    ----------
    top : (genre, probability) pairs, most probable first
    """
    if not top:
        return []
    best = top[0][1]
    return [g for g, p in top[:MIX_MAX] if p >= best - MIX_MARGIN]


def display_label(prediction) -> str:
    """What a person reads for ``prediction``: ``"jazz"``, ``"blues / jazz"``, ``"jazz (unsure)"`` or
    ``"no music detected"``."""
    if prediction.no_music is not None:
        return NO_MUSIC
    label = " / ".join(headline(prediction.top))
    return label if prediction.confident else f"{label} ({UNSURE})"


def _ms(seconds: float) -> float:
    return round(float(seconds), 3)


def _smoothed(timeline: list, n: int) -> list[dict[str, float]]:
    """Each window's probabilities averaged over the ``n`` windows centred on it (fewer at the ends)."""
    half = max(0, n - 1) // 2
    out = []
    for i in range(len(timeline)):
        near = timeline[max(0, i - half) : i + half + 1]
        out.append({g: sum(s.probabilities[g] for s in near) / len(near) for g in timeline[i].probabilities})
    return out


def timeline_runs(timeline: list, duration_s: float, config: TimelineConfig | None = None) -> list[dict]:
    """The runs of one genre along a song: ``{"start_s", "end_s", "genre"}``, covering it without overlap.

    Windows overlap, so each moment belongs to the window whose centre is nearest: a run ends halfway
    between its last window's centre and the next run's first. Probabilities are first smoothed over
    ``config.smooth_windows`` windows; then the shortest run under ``config.min_run_s`` is merged into
    the neighbour whose genre is more probable over it, until none is left (a song shorter than the
    minimum keeps one run).

    Parameters
    ----------
    timeline : the windows (``start_s``, ``end_s``, ``probabilities``), in order
    duration_s : the song's duration
    config : smoothing and minimum run (default :class:`TimelineConfig`)
    """
    if not timeline:
        return []
    config = config or TimelineConfig()
    probs = _smoothed(timeline, config.smooth_windows)
    centres = [(s.start_s + s.end_s) / 2 for s in timeline]
    runs: list[dict] = []  # first, last window index and genre
    for i, p in enumerate(probs):
        genre = max(p, key=p.get)
        if runs and runs[-1]["genre"] == genre:
            runs[-1]["last"] = i
        else:
            runs.append({"first": i, "last": i, "genre": genre})

    def bounds(k: int) -> tuple[float, float]:
        start = 0.0 if k == 0 else (centres[runs[k - 1]["last"]] + centres[runs[k]["first"]]) / 2
        end = duration_s if k == len(runs) - 1 else (centres[runs[k]["last"]] + centres[runs[k + 1]["first"]]) / 2
        return start, end

    def support(k: int, genre: str) -> float:
        return sum(probs[i][genre] for i in range(runs[k]["first"], runs[k]["last"] + 1))

    while len(runs) > 1:
        lengths = [b - a for a, b in map(bounds, range(len(runs)))]
        k = min(range(len(runs)), key=lengths.__getitem__)
        if lengths[k] >= config.min_run_s:
            break
        sides = [j for j in (k - 1, k + 1) if 0 <= j < len(runs)]
        into = max(sides, key=lambda j: support(k, runs[j]["genre"]))
        runs[into]["first"] = min(runs[into]["first"], runs[k]["first"])
        runs[into]["last"] = max(runs[into]["last"], runs[k]["last"])
        del runs[k]
        merged = []  # neighbours that now share a genre become one run
        for r in runs:
            if merged and merged[-1]["genre"] == r["genre"]:
                merged[-1]["last"] = r["last"]
            else:
                merged.append(r)
        runs = merged
    return [
        {"start_s": _ms(a), "end_s": _ms(b), "genre": r["genre"]}
        for r, (a, b) in zip(runs, map(bounds, range(len(runs))))
    ]


def window_json(segment) -> dict:
    """One raw window of the timeline: its times, most probable genre and every probability."""
    probs = {str(g): float(p) for g, p in segment.probabilities.items()}
    return {
        "start_s": _ms(segment.start_s),
        "end_s": _ms(segment.end_s),
        "genre": max(probs, key=probs.get),
        "probabilities": probs,
    }


def style_list(styles: dict[str, float], threshold: float = DEFAULT_STYLE_THRESHOLD) -> list[dict]:
    """The styles at least ``threshold`` probable, most probable first: ``[{"style", "probability"}]``."""
    ranked = sorted(((str(t), float(p)) for t, p in styles.items() if p >= threshold), key=lambda kv: -kv[1])
    return [{"style": t, "probability": p} for t, p in ranked]


def prediction_json(
    prediction,
    *,
    top_k: int = 3,
    windows: bool = False,
    timeline: TimelineConfig | None = None,
    style_threshold: float = DEFAULT_STYLE_THRESHOLD,
) -> dict:
    """The one JSON object of a prediction.

    Fields: ``path``; ``genre`` and its ``probability`` (``null`` when no music is detected);
    ``confident``; ``no_music`` (why there is no genre, else ``null``); ``label`` (what a person
    reads, see :func:`display_label`); ``genres`` (the headline: the genre, or up to three close
    ones); ``top`` (the ``top_k`` most probable genres, ``[]`` without music); ``probabilities``
    (every genre, ``null`` without music); ``duration_s`` (decoded); ``truncated`` and
    ``declared_duration_s`` (the file ends before its header says); ``timeline`` (runs, see
    :func:`timeline_runs`; ``[]`` for a sampled song, whose windows do not cover it); ``windows``
    (raw windows, when asked: for a sampled song, those analysed); ``analysed`` (``"all 60
    windows"``, or ``"8 of 60 windows"`` when the song was sampled: then only the first genre is
    as stable as the full analysis's, the others in ``top`` and ``genres`` are approximate);
    ``model`` (its name: the model is described once, by ``genrekit models`` and ``GET /api/models``).
    When the file's tags were read: ``artist``, ``album``, ``title`` after ``path`` (``""`` when
    absent). When the styles were computed: ``styles``, the musicnn MSD tags at least
    ``style_threshold`` probable (:func:`style_list`).

    Parameters
    ----------
    prediction : a :class:`genrekit.predictor.Prediction`
    top_k : genres listed in ``top``
    windows : add every raw window with its probabilities
    timeline : how runs are read (default :class:`TimelineConfig`)
    style_threshold : the least probability of a style listed
    """
    music = prediction.no_music is None
    sampled = getattr(prediction, "sampled", None) is not None
    top = prediction.top if music else []
    body = {"path": prediction.path}
    tags = getattr(prediction, "tags", None)
    if tags is not None:
        body |= {k: tags.get(k, "") for k in NAME_TAGS}
    body |= {
        "genre": top[0][0] if music else None,
        "probability": float(top[0][1]) if music else None,
        "confident": bool(music and prediction.confident),
        "no_music": prediction.no_music,
        "label": display_label(prediction),
        "genres": headline(top),
        "top": [{"genre": g, "probability": float(p)} for g, p in top[: max(0, top_k)]],
        "probabilities": {str(g): float(p) for g, p in prediction.probabilities.items()} if music else None,
        "duration_s": _ms(prediction.duration_s),
        "truncated": bool(prediction.truncated),
        "declared_duration_s": None if prediction.declared_s is None else _ms(prediction.declared_s),
        "timeline": timeline_runs(prediction.timeline, prediction.duration_s, timeline)
        if music and not sampled
        else [],
        "analysed": getattr(prediction, "analysed", None),
        "model": prediction.model,
    }
    styles = getattr(prediction, "styles", None)
    if styles is not None:
        body["styles"] = style_list(styles, style_threshold) if music else []
    if windows:
        body["windows"] = [window_json(s) for s in prediction.timeline] if music else []
    return body
