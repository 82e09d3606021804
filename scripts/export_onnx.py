"""Export a checkpoint (default: the bundled model) to ONNX beside it, for the torch-free runtime.

python scripts/export_onnx.py [--model path/to/model.pt] [--out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from genrekit.onnx_export import export_onnx


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="checkpoint or bundled model name (default: the bundled model)")
    ap.add_argument("--out", type=Path, default=None, help="folder (default: beside the checkpoint)")
    args = ap.parse_args()
    print(export_onnx(model=args.model, out_dir=args.out))


if __name__ == "__main__":
    main()
