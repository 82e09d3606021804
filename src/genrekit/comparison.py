"""Comparisons: models trained and evaluated over the folds of one or several variants, as mean ± sd.

:func:`run_comparison` is the one run loop (``genrekit compare``, with or without ``--protocol``,
and the benchmarks); :func:`compare_models` runs it over :func:`genrekit.experiment.fit` and
:func:`~genrekit.experiment.evaluate` per fold, :func:`run_protocol` for one model, and the seed
documents' protocols (:mod:`genrekit.seed_protocols`) with runs of their own. A comparison (``compare.json``, one schema for ``genrekit compare`` with or without
``--protocol``, and for the benchmarks) is a dict::

    {"protocol": {"key": ..., ...},         # what was run: a split protocol or a seed's protocol
     "models": {model: {variant: summary}},  # summary: runs, settings, <metric>_mean/_sd (summarise)
     ...}                                    # context: "data", "budget", "hardware"

and :func:`comparison_markdown` is its one markdown table.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from genrekit.config import TrainConfig
from genrekit.experiment import Data, evaluate, fit, write_report
from genrekit.models import DEFAULT_MODEL
from genrekit.plots import comparison_png
from genrekit.splits import Fold

# metrics a run may report, summarised as <metric>_mean and <metric>_sd; names in the table
METRICS = {
    "accuracy": "accuracy",
    "clip_accuracy": "clip accuracy",
    "balanced_accuracy": "balanced accuracy",
    "macro_f1": "macro-F1",
    "segment_accuracy": "segment accuracy",
    "train_accuracy": "train accuracy",
    "train_seconds": "train s/run",
}


def summarise(rows: list[dict], *, settings: dict | None = None) -> dict:
    """The runs of one model under one variant (``settings``: what the comparison set for that
    model), with the mean and sample sd (0 for one run) of each of :data:`METRICS` the runs report.

    Examples
    --------
    >>> s = summarise([{"accuracy": 0.5}, {"accuracy": 0.7}])
    >>> round(s["accuracy_mean"], 3), round(s["accuracy_sd"], 3), len(s["runs"])
    (0.6, 0.141, 2)
    """
    out: dict = {"settings": dict(settings or {}), "runs": rows}
    for key in METRICS:
        vals = np.array([r[key] for r in rows if key in r], dtype=float)
        if len(vals):
            out[f"{key}_mean"] = float(vals.mean())
            out[f"{key}_sd"] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
    return out


def _cell(summary: dict, key: str) -> str:
    if f"{key}_mean" not in summary:
        return "—"
    if key == "train_seconds":
        return f"{summary[key + '_mean']:.0f}"
    sd = f" ± {summary[key + '_sd']:.3f}" if len(summary["runs"]) > 1 else ""
    return f"{summary[key + '_mean']:.3f}{sd}"


def _heading(result: dict) -> str:
    p, data, budget = result["protocol"], result.get("data"), result.get("budget")
    text = f"Protocol: {p['key']}"
    if p.get("claim"):
        text += f" (its document: {p['claim']})"
    if data:
        text += f"; {data['input_kind']}, {data['clips']} clips"
        if data.get("samples", data["clips"]) != data["clips"]:
            text += f" cut into {data['samples']} samples"
    if budget and "seed_epochs" in budget:
        text += f"; at most {budget['epochs']} of the seed's {budget['seed_epochs']} epochs"
    return text + ". Mean ± sd over runs, accuracy at the level each row names."


def comparison_markdown(result: dict) -> str:
    """The markdown table of a comparison: a row per model and variant, a column per metric reported."""
    rows = [(m, v, s) for m, variants in result["models"].items() for v, s in variants.items()]
    metrics = [k for k in METRICS if any(f"{k}_mean" in s for *_, s in rows)]
    lines = [
        _heading(result),
        "",
        "| model | variant | runs | level | " + " | ".join(METRICS[k] for k in metrics) + " | epochs run |",
        "|---|---|---|---|" + "---|" * len(metrics) + "---|",
    ]
    for model, variant, s in rows:
        epochs = sorted({r["epochs_run"] for r in s["runs"]})
        run = f"{epochs[0]}–{epochs[-1]}" if len(epochs) > 1 else str(epochs[0])
        levels = ", ".join(sorted({r.get("level", "track") for r in s["runs"]}))
        cells = " | ".join(_cell(s, k) for k in metrics)
        lines.append(f"| {model} | {variant} | {len(s['runs'])} | {levels} | {cells} | {run} |")
    return "\n".join(lines) + "\n"


def write_comparison(result: dict, out_dir: str | os.PathLike) -> Path:
    """Write ``compare.json`` and ``compare.md`` (:func:`comparison_markdown`) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(result, indent=2))
    (out / "compare.md").write_text(comparison_markdown(result))
    return out


@dataclass(frozen=True)
class Run:
    """One run of a comparison: ``model`` (with ``params``) on the ``index``-th fold of ``variant``."""

    model: str
    params: dict
    variant: str
    fold: Fold
    index: int


def run_comparison(
    *,
    models: dict[str, dict],
    variants: dict[str, Callable[[], list[Fold]]],
    run: Callable[[Run], dict],
    about: dict,
    on_result: Callable[[dict], object] | None = None,
) -> dict:
    """Every model under every variant: ``run`` gives a row of metrics for each :class:`Run`
    (a model on one of the variant's folds); the rows' mean ± sd (:func:`summarise`).

    Parameters
    ----------
    models : architecture -> its settings, recorded in its summaries (the model's hyper-parameters
        in :func:`compare_models`, training overrides in the seed protocols)
    variants : name -> the folds to run, made when the variant starts (an error in one comes
        after the earlier variants' runs were reported)
    about : what the comparison records beside ``models``: ``protocol`` (with its ``key``) and
        the context (``data``, ``budget``, ...)
    on_result : called with the partial result after every run (nothing computed is lost)

    Returns
    -------
    dict
        the ``compare.json`` schema of this module
    """
    result = {**about, "models": {}}
    for model, params in models.items():
        result["models"][model] = {}
        for variant, make_folds in variants.items():
            rows = []
            for i, fold in enumerate(make_folds()):
                rows.append(run(Run(model, params, variant, fold, i)))
                result["models"][model][variant] = summarise(rows, settings=params)
                if on_result:
                    on_result(result)
    return result


def _fold_run(data: Data, *, config: TrainConfig, device, progress: bool, out_dir) -> Callable[[Run], dict]:
    """The runs of :func:`compare_models`: fit with seed ``config.seed + index``, evaluate on the
    fold's test tracks (the report written under ``out_dir/<model>/<fold>`` when given)."""

    def run(r: Run) -> dict:
        model, fold = r.model, r.fold
        ckpt, result = fit(
            data,
            fold,
            model=model,
            model_params=r.params,
            config=replace(config, seed=config.seed + r.index),
            device=device,
            progress=progress,
        )
        rep = evaluate(ckpt, data, fold.test)
        if out_dir is not None:
            write_report(rep, Path(out_dir) / model / fold.name, history=result.history, title=f"{model} {fold.name}")
        return {
            "fold": fold.name,
            "level": "track",
            "accuracy": rep["track"]["accuracy"],
            "balanced_accuracy": rep["track"]["balanced_accuracy"],
            "macro_f1": rep["track"]["macro_f1"],
            "segment_accuracy": rep["segment"]["accuracy"],
            "per_class_recall": {g: v["recall"] for g, v in rep["track"]["per_class"].items()},
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "train_seconds": round(result.seconds, 1),
            "n_test": len(fold.test),
            "model_params": ckpt.model_params,
            "n_parameters": sum(int(v.numel()) for v in ckpt.state_dict.values()),
        }

    return run


def _data_about(data: Data) -> dict:
    return {
        "root": str(data.path),
        "input_kind": data.tracks[0].kind,
        "features": data.feature_config.kind,
        "clips": len(data.y),
        "unreadable": data.failed,
    }


def compare_models(
    data: Data,
    folds: list[Fold],
    *,
    protocol: str,
    models: dict[str, dict],
    config: TrainConfig | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    out_dir: str | os.PathLike,
) -> dict:
    """Train and evaluate every model on every fold (``genrekit compare``).

    Writes ``compare.json`` and ``compare.md`` into ``out_dir`` after every run, each run's
    report under ``runs/<model>/<fold>`` and, at the end, ``compare.png`` (mean track accuracy).
    ``models``: architecture -> hyper-parameters; ``protocol`` names the folds' protocol.
    """
    config = config or TrainConfig()
    out = Path(out_dir)
    result = run_comparison(
        models=models,
        variants={protocol: lambda: folds},
        run=_fold_run(data, config=config, device=device, progress=progress, out_dir=out / "runs"),
        about={
            "protocol": {"key": protocol, "splits": len(folds), "train": config.to_dict()},
            "data": _data_about(data),
        },
        on_result=lambda partial: write_comparison(partial, out),
    )
    summaries = [result["models"][m][protocol] for m in models]
    comparison_png(
        list(models),
        [s["accuracy_mean"] for s in summaries],
        [s["accuracy_sd"] for s in summaries],
        out / "compare.png",
        "track accuracy",
    )
    return result


def run_protocol(
    data: Data,
    folds: list[Fold],
    *,
    model: str = DEFAULT_MODEL,
    model_params: dict | None = None,
    config: TrainConfig | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    out_dir: str | os.PathLike | None = None,
) -> dict:
    """Train and evaluate ``model`` on every fold (seed ``config.seed + i`` for fold i): its
    summary of :func:`summarise` (rows in ``runs``) with ``model`` added."""
    params = dict(model_params or {})
    result = run_comparison(
        models={model: params},
        variants={"folds": lambda: folds},
        about={"protocol": {"key": "folds"}},
        run=_fold_run(data, config=config or TrainConfig(), device=device, progress=progress, out_dir=out_dir),
    )
    return {"model": model, **result["models"][model]["folds"]}
