"""Which form of a model runs: its current ONNX export on onnxruntime (no torch), else its torch checkpoint.

An export that does not match its checkpoint is never run, and never passed over silently.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from genrekit.checkpoint import resolve_model_path
from genrekit.errors import GenrekitError
from genrekit.precision import DEFAULT_PRECISION, check_precision

if TYPE_CHECKING:
    import torch

    from genrekit.inference import TrainedModel

__all__ = ["RUNTIMES", "load_trained_model"]

RUNTIMES = ("auto", "onnx", "torch")


def load_trained_model(
    model: str | os.PathLike | None = None,
    *,
    device: str | torch.device = "cpu",
    runtime: str = "auto",
    threads: int | None = None,
    precision: str = DEFAULT_PRECISION,
) -> tuple[TrainedModel, str]:
    """The trained model to run for a checkpoint file or a bundled model's name, and the name results give it.

    Parameters
    ----------
    model : str, os.PathLike or None
        A checkpoint file or a bundled model's name (``None``: the bundled model).
    device : str or torch.device
        Where a torch model runs.
    runtime : str
        ``"auto"``: the checkpoint's ONNX export when it is current, onnxruntime is installed
        and ``device`` is the CPU, else torch; ``"onnx"`` or ``"torch"`` to insist.
    threads : int or None
        Threads of the ONNX runtime's sessions (default: one per core).
    precision : str
        The backbone's (:data:`genrekit.precision.PRECISIONS`); any but ``"fp32"`` needs the ONNX export.

    Returns
    -------
    tuple of (TrainedModel, str)

    Raises
    ------
    GenrekitError
        The file is missing or not a genrekit checkpoint, the runtime asked for is unavailable, or
        the precision asked for needs an ONNX export it has not.
    """
    from genrekit.runtime import OnnxModel, card_path, card_problem, onnx_available

    if runtime not in RUNTIMES:
        raise GenrekitError(f"unknown runtime '{runtime}'; choose one of: {', '.join(RUNTIMES)}")
    check_precision(precision)
    if precision != DEFAULT_PRECISION and (runtime == "torch" or str(device) != "cpu"):
        raise GenrekitError(f"precision {precision} runs on onnxruntime on the CPU only, not on {runtime} / {device}")
    path = resolve_model_path(model)
    name = Path(model).name if model is not None else path.name
    problem = None
    if runtime != "torch" and str(device) == "cpu":
        problem = card_problem(path) if onnx_available() else "onnxruntime is not installed"
        if problem is None:
            suffix = "" if precision == DEFAULT_PRECISION else f" ({precision})"  # results say which ran
            return OnnxModel(card_path(path), threads=threads, precision=precision), name + suffix
        if runtime == "onnx" or precision != DEFAULT_PRECISION:
            raise GenrekitError(f"'{path}' has no current ONNX export: {problem}")
        if card_path(path).is_file():
            # stacklevel 3: the warning names the caller of Predictor.load
            warnings.warn(f"not using the ONNX export of '{path}': {problem}; running it with torch", stacklevel=3)
    try:
        from genrekit.checkpoint import load_checkpoint

        checkpoint = load_checkpoint(path)
    except ModuleNotFoundError as exc:
        why = f"; its ONNX export cannot be used: {problem}" if problem else ""
        raise GenrekitError(f"'{path}' needs torch ({exc}): pip install 'genrekit[train]'{why}") from None
    return checkpoint, name
