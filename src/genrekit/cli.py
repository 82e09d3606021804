"""The ``genrekit`` command: predict, train, evaluate, compare, models, render, serve.

Only the standard library is imported here; each command imports what it needs, so
``genrekit --help`` starts at once. The training commands and their options:
:mod:`genrekit.train_commands`.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from genrekit import __version__
from genrekit import train_commands as training
from genrekit.errors import GenrekitError

# what the [train] extra installs: predict and serve of a model with an ONNX export need none of it
TRAIN_MODULES = ("torch", "librosa", "sklearn", "matplotlib", "PIL", "onnx")


def cmd_predict(a) -> None:
    from genrekit.tagging.predict_command import run_from_args

    if run_from_args(a).failed:  # documented: 1 when any file failed
        sys.exit(1)


def cmd_models(a) -> None:
    from genrekit.checkpoint import bundled_model_path, bundled_models, load_checkpoint
    from genrekit.features import FEATURE_KINDS, feature_kind
    from genrekit.models import DEFAULT_MODEL, model_names, model_spec
    from genrekit.tagging.styles import describe as describe_styles
    from genrekit.tagging.styles import style_rows

    paths = bundled_models() + [Path(p) for p in a.model]
    print("Trained models (bundled ones by name: genrekit predict --model gknet-gtzan ...):")
    for p in paths:
        if not p.exists():
            print(f"  {p}: missing")
            continue
        c = load_checkpoint(p)
        m = c.metadata
        acc = m.get("accuracy", {})
        bundled = p.parent == bundled_model_path().parent
        tag = " (bundled, default)" if p == bundled_model_path() else " (bundled)" if bundled else ""
        print(f"  {p.name}{tag}: {c.model_name}, features {c.feature_config.kind}")
        print(f"      genres:     {', '.join(c.labels)} ({len(c.labels)})")
        print(f"      trained on: {m.get('trained_on', '?')}")
        print(f"      protocol:   {m.get('protocol', '?')}")
        if acc:
            print(
                "      measured:   "
                + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in acc.items())
            )
        if m.get("description"):
            print(f"      {m['description']}")
        if style_rows(c.feature_config) is not None:
            print("\n".join("      " + line for line in describe_styles()))
    print(
        "\nmusicnn weights: musicnn 0.1.0 (Pons & Serra 2019), ISC licence, (c) 2019 Music Technology Group, "
        "Universitat Pompeu Fabra (LICENSES/musicnn-ISC.txt)"
    )
    print("\nArchitectures (genrekit train --model NAME):")
    for n in model_names():
        print(f"  {n:<18} {'[default] ' if n == DEFAULT_MODEL else ''}{model_spec(n).source}")
    print("\nFeature kinds and their settings (genrekit train --features KIND --feature KEY=VALUE):")
    for kind in FEATURE_KINDS:
        defaults = feature_kind(kind)().to_dict()
        defaults.pop("kind")
        print(f"  {kind:<13} " + ", ".join(f"{k}={v}" for k, v in defaults.items()))


def cmd_render(a) -> None:
    from genrekit.audio import load_audio
    from genrekit.features.kaggle_image import SR, render_image, save_png

    out = Path(a.output or Path(a.audio).with_suffix(".png").name)
    save_png(render_image(load_audio(a.audio, sr=SR), SR), out)
    print(f"written {out}")


def cmd_serve(a) -> None:
    from genrekit.serve import main as serve_main
    from genrekit.serve.config import settings_from_args

    serve_main(**settings_from_args(a))


class _HelpWithDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default in its help, once: not where the help already says it, nor for flags and unset options."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    from genrekit.serve.config import add_arguments as add_serve_arguments  # light: no FastAPI, no torch
    from genrekit.tagging.command import add_arguments as _add_tag_arguments
    from genrekit.tagging.command import run as _run_tag
    from genrekit.tagging.predict_command import add_arguments as add_predict_arguments  # light until a run starts

    fmt = _HelpWithDefaults
    parser = argparse.ArgumentParser(prog="genrekit", description="Music genre classification from audio.")
    parser.add_argument("--version", action="version", version=f"genrekit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="genres of audio files or whole folders", formatter_class=fmt)
    add_predict_arguments(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("tag", help="write genres into the files' tags (safely, undoably)")
    _add_tag_arguments(p)
    p.set_defaults(func=lambda a: sys.exit(_run_tag(a)))

    p = sub.add_parser("train", help="train a model and evaluate it on a held-out split", formatter_class=fmt)
    training.add_training_args(p, split="random")
    p.add_argument("--fold", type=int, help="which fold of --split kfold to train")
    p.add_argument("--out", default="runs/train", help="output folder (model.pt, report/)")
    p.set_defaults(func=training.cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a checkpoint on a dataset", formatter_class=fmt)
    p.add_argument("--model", required=True, help="checkpoint (.pt)")
    training.add_data_args(p)
    p.add_argument(
        "--subset",
        default="test",
        choices=["test", "all"],
        help="'test': the tracks the checkpoint held out; 'all': every track of --data",
    )
    p.add_argument("--split-file", help="evaluate only the clips listed in this file")
    p.add_argument(
        "--allow-seen",
        action="store_true",
        help="measure even tracks the model was trained on (warns: that is no evaluation)",
    )
    p.add_argument("--out", default="runs/evaluate")
    p.set_defaults(func=training.cmd_evaluate)

    p = sub.add_parser("compare", help="several models under one protocol (mean ± sd)", formatter_class=fmt)
    training.add_training_args(p, split="kfold")
    p.add_argument(
        "--seeds", type=int, default=5, help="random splits (seeds --seed, --seed+1, ...) for --split random"
    )
    p.add_argument("--models", default="all", help="comma-separated names, or 'all'")
    p.add_argument(
        "--protocol",
        choices=[f"seed00{i}" for i in range(5)],
        help="a seed document's own protocol and model(s), beside the honest ones (--data: the GTZAN root)",
    )
    p.add_argument("--max-epochs", type=int, help="--protocol: cap the seed's epochs (recorded)")
    p.add_argument("--repetitions", type=int, help="--protocol: random splits per variant (default: the seed's)")
    p.add_argument("--out", default="runs/compare")
    p.set_defaults(func=training.cmd_compare)

    p = sub.add_parser("models", help="the bundled and given models, the architectures and feature kinds")
    p.add_argument("model", nargs="*", help="checkpoint files to describe")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("render", help="render audio as a Kaggle GTZAN spectrogram image")
    p.add_argument("audio")
    p.add_argument("-o", "--output", help="PNG path (default: <audio name>.png)")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("serve", help="web page and REST API")
    add_serve_arguments(p)
    p.set_defaults(func=cmd_serve)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():  # warnings as one plain line, for this command only
        warnings.simplefilter("default")
        warnings.showwarning = _show_warning
        try:
            args.func(args)
        except GenrekitError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        except ModuleNotFoundError as exc:
            if exc.name not in TRAIN_MODULES:
                raise
            print(f"error: 'genrekit {args.command}' needs {exc.name}: pip install 'genrekit[train]'", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)


if __name__ == "__main__":
    main()
