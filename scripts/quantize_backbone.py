"""Make an int8 copy of the bundled musicnn backbone with onnxruntime.quantization, for measuring.

Static quantisation (QDQ, per-channel int8 weights, uint8 activations, MinMax ranges) after
onnxruntime's pre-processing (shape inference, constant folding) of the operators ``--variant``
names (default: the timbral convolutions, see ``VARIANTS``); or ``--dynamic`` (weights only,
activations quantised at run time). The calibration data are the
musicnn input patches (levelled, log-compressed log-mel, exactly what the backbone is given) of
GTZAN clips (the bundled head's training data), a few per genre; never the outside set. ``--exclude`` leaves out clips (e.g. those a benchmark is measured on).

Beside the int8 file, ``<out>.json`` records the calibration clips and which operators run in
int8 once onnxruntime has optimised the graph (its ``QLinear*`` / ``*Integer`` nodes).

    python scripts/quantize_backbone.py --out ~/.cache/genrekit/musicnn_msd.int8.onnx [--per-genre 4] [--dynamic]

The bundled ``musicnn_msd.int8.onnx`` (``--precision int8``) is the file ``benchmarks/int8.py``
measured: calibrated with the clips of its songs left out (``--exclude``: their stems, one a line;
the benchmark's JSON lists the calibration clips), then ``--bundle``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
from pathlib import Path

import numpy as np

BUNDLED = Path(__file__).resolve().parents[1] / "src" / "genrekit" / "bundled"
BACKBONE = BUNDLED / "musicnn_msd.onnx"
CARD = BUNDLED / "musicnn-gtzan.onnx.json"
DATA = Path(os.environ.get("GENREKIT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "gtzan"))
CHUNK = 2  # patches per calibration batch, as genrekit.runtime runs the backbone
# what is quantised: the timbral convolutions hold 81 % of the backbone's 2.8 GFLOP per patch, the
# temporal ones 15 %, the mid-end 4 %; quantising more than the timbral ones moved the
# probabilities of held-out GTZAN clips further for no measurable CPU (benchmarks/int8.py)
VARIANTS = {
    "all": {},
    "conv": {"ops": ("Conv",)},
    "front": {"ops": ("Conv",), "nodes": ("/model/timbral", "/model/temporal")},
    "timbral": {"ops": ("Conv",), "nodes": ("/model/timbral",)},
}
DEFAULT_VARIANT = "timbral"


def calibration_clips(*, data: Path, per_genre: int, exclude: set[str], seed: int = 0) -> list[Path]:
    """``per_genre`` GTZAN audio clips of each genre, drawn with ``seed``, none of whose stems
    (``blues.00029``) is in ``exclude``. (The bundled head is trained on all of them.)"""
    rng = np.random.default_rng(seed)
    clips = []
    for genre in sorted(p for p in (data / "genres_original").iterdir() if p.is_dir()):
        have = sorted(p for p in genre.iterdir() if p.stem not in exclude)
        clips += [have[i] for i in sorted(rng.choice(len(have), min(per_genre, len(have)), replace=False))]
    return clips


def input_patches(clips: list[Path]) -> np.ndarray:
    """The backbone's input ``(n, 1, 96, 187)`` for every patch of ``clips``, as the runtime computes it."""
    from genrekit.audio import load_audio
    from genrekit.features import FeatureConfig
    from genrekit.features.musicnn import MusicnnStream

    config = FeatureConfig.from_dict(json.loads(CARD.read_text())["feature_config"])
    seen: list[np.ndarray] = []

    def record(x: np.ndarray) -> np.ndarray:
        seen.append(x.copy())
        return np.zeros((len(x), config.n_bins), np.float32)

    for clip in clips:
        stream = MusicnnStream(config, embed=record, backend="numpy")
        stream.push(load_audio(clip, sr=config.sample_rate))
        stream.finish()
    return np.concatenate(seen)[:, None].astype(np.float32)


def int8_ops(path: Path) -> dict[str, int]:
    """Operators of ``path`` once onnxruntime has optimised it (one thread), counted by type."""
    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    with tempfile.TemporaryDirectory() as tmp:
        options.optimized_model_filepath = str(Path(tmp) / "optimised.onnx")
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        graph = onnx.load(options.optimized_model_filepath).graph
    return dict(collections.Counter(n.op_type for n in graph.node).most_common())


def quantize(
    *,
    out: Path,
    patches: np.ndarray | None,
    dynamic: bool = False,
    method: str = "minmax",
    ops: tuple[str, ...] | None = None,
    nodes: tuple[str, ...] | None = None,
) -> dict:
    """Write the int8 backbone to ``out`` (static from ``patches``, or ``dynamic``); returns what was done.

    ``method``: how activation ranges are calibrated (``minmax``, ``percentile``, ``entropy``);
    ``ops``: the operator types to quantise (``None``: all that onnxruntime can); ``nodes``: the
    nodes to quantise, by the start of their names (``None``: all of those types).
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(range(0, len(patches), CHUNK))

        def get_next(self):
            i = next(self.batches, None)
            return None if i is None else {"patches": patches[i : i + CHUNK]}

    METHODS = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(BACKBONE), str(pre))
        chosen = None
        if nodes:
            import onnx

            graph = onnx.load(str(pre)).graph
            chosen = [n.name for n in graph.node if n.name.startswith(nodes) and (not ops or n.op_type in ops)]
        if dynamic:
            quantize_dynamic(str(pre), str(out), per_channel=True, weight_type=QuantType.QInt8)
            how = "dynamic: int8 per-channel weights, activations quantised at run time"
        else:
            quantize_static(
                str(pre),
                str(out),
                Reader(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=METHODS[method],
                op_types_to_quantize=list(ops) if ops else None,
                nodes_to_quantize=chosen,
            )
            how = f"static QDQ: int8 per-channel weights, uint8 activations, {method} calibration"
            how += f", only {', '.join(ops)} quantised" if ops else ""
            how += f", only the nodes {', '.join(nodes)}..." if nodes else ""
    ops = int8_ops(out)
    int8 = ("QLinear", "QGemm", "DynamicQuantizeMatMul", "ConvInteger", "MatMulInteger")
    quantised = {op: n for op, n in ops.items() if op.startswith(int8)}
    return {"method": how, "bytes": out.stat().st_size, "ops_after_optimisation": ops, "int8_ops": quantised}


def bundle(*, path: Path) -> Path:
    """Copy the int8 backbone ``path`` into the bundled model and name it in the card as its int8
    backbone (``precisions.int8``), with its SHA-256; returns the bundled file."""
    import shutil

    from genrekit.runtime import file_sha256

    target = BUNDLED / "musicnn_msd.int8.onnx"
    shutil.copy(path, target)
    card = json.loads(CARD.read_text())
    card["precisions"] = {"int8": {"msd": target.name}}
    card["sha256"][target.name] = file_sha256(target)
    CARD.write_text(json.dumps(card, indent=1, ensure_ascii=False) + "\n")
    return target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="the int8 file (outside the repository)")
    ap.add_argument("--data", type=Path, default=DATA, help="GTZAN root")
    ap.add_argument("--per-genre", type=int, default=4, help="calibration clips per genre")
    ap.add_argument("--exclude", type=Path, default=None, help="a file of clip stems to leave out, one a line")
    ap.add_argument("--variant", choices=VARIANTS, default=DEFAULT_VARIANT, help="what to quantise (static)")
    ap.add_argument("--dynamic", action="store_true", help="dynamic quantisation (no calibration)")
    ap.add_argument("--bundle", action="store_true", help="also ship it: copy it into the bundled model and its card")
    args = ap.parse_args()
    exclude = set(args.exclude.read_text().split()) if args.exclude else set()
    clips = [] if args.dynamic else calibration_clips(data=args.data, per_genre=args.per_genre, exclude=exclude)
    patches = input_patches(clips) if clips else None
    done = quantize(
        out=args.out, patches=patches, dynamic=args.dynamic, **({} if args.dynamic else VARIANTS[args.variant])
    )
    done |= {
        "calibration_clips": [c.stem for c in clips],
        "calibration_patches": 0 if patches is None else len(patches),
    }
    args.out.with_suffix(".json").write_text(json.dumps(done, indent=2) + "\n")
    print(json.dumps({k: v for k, v in done.items() if k != "calibration_clips"}, indent=2))
    if args.bundle:
        print("bundled:", bundle(path=args.out))


if __name__ == "__main__":
    main()
