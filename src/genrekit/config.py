"""Training settings: a plain dataclass in a light module, so the CLI derives its options (and
their defaults) from it without loading torch."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


def _help(text: str):
    return {"help": text}


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters; the defaults are the ones genrekit's benchmarks use."""

    epochs: int = field(default=40, metadata=_help("maximum number of epochs"))
    batch_size: int = field(default=32, metadata=_help("windows per optimisation step"))
    lr: float = field(default=3e-3, metadata=_help("peak learning rate of the one-cycle schedule (AdamW)"))
    weight_decay: float = field(default=1e-3, metadata=_help("AdamW weight decay"))
    windows_per_track: int = field(default=4, metadata=_help("random windows drawn per training track and epoch"))
    patience: int = field(default=10, metadata=_help("early stopping: epochs without a better validation score"))
    balance: bool = field(default=True, metadata=_help("draw every class equally often"))
    augment: bool = field(default=True, metadata=_help("SpecAugment-style band masks"))
    mixup: float = field(default=0.0, metadata=_help("mixup Beta parameter (0: off)"))
    seed: int = field(default=0, metadata=_help("seeds the split (random protocol), the draws and the weights"))

    def to_dict(self) -> dict:
        return asdict(self)
