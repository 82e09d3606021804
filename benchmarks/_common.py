"""Argument parsing and data loading shared by the training benchmarks."""

from __future__ import annotations

import argparse

from _results import SHARED_DATA


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", default=str(SHARED_DATA), help="GTZAN root (default ../shared/data/gtzan)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--windows-per-track", type=int, default=4)
    p.add_argument("--device", default=None, help="where to train: cpu, cuda ... (default: CUDA when available)")
    p.add_argument("--no-progress", action="store_true")
    return p
