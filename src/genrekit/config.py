"""Training settings: a plain dataclass in a light module, so the CLI derives its options (and
their defaults) from it without loading torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from genrekit.errors import GenrekitError

OPTIMIZERS = ("adamw", "adam", "nadam", "sgd")
SCHEDULES = ("onecycle", "constant", "decay")
PRECISIONS = ("fp32", "bf16")


def _help(text: str, choices: tuple[str, ...] | None = None):
    return {"help": text, "choices": choices}


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters; the defaults are the ones genrekit's benchmarks use."""

    epochs: int = field(default=40, metadata=_help("maximum number of epochs"))
    batch_size: int = field(default=32, metadata=_help("windows per optimisation step"))
    optimizer: str = field(default="adamw", metadata=_help("the optimiser (sgd: plain, without momentum)", OPTIMIZERS))
    schedule: str = field(
        default="onecycle", metadata=_help("onecycle: peak --lr; decay: inverse time, --lr/2 at the end", SCHEDULES)
    )
    lr: float = field(default=3e-3, metadata=_help("learning rate (the peak of the one-cycle schedule)"))
    weight_decay: float = field(default=1e-3, metadata=_help("weight decay (decoupled for adamw)"))
    windows_per_track: int = field(default=4, metadata=_help("random windows drawn per training track and epoch"))
    patience: int = field(default=10, metadata=_help("early stopping: epochs without a better validation score"))
    restore_best: bool = field(
        default=True, metadata=_help("end with the weights of the best validation epoch, not the last")
    )
    balance: bool = field(
        default=True,
        metadata=_help("draw every class equally often; off: every track windows-per-track times, shuffled"),
    )
    augment: bool = field(default=True, metadata=_help("SpecAugment-style band masks"))
    mixup: float = field(default=0.0, metadata=_help("mixup Beta parameter (0: off)"))
    precision: str = field(
        default="fp32",
        metadata=_help("fp32, or bf16: bfloat16 autocast (fast where the CPU has AMX or on a GPU)", PRECISIONS),
    )
    seed: int = field(default=0, metadata=_help("seeds the split (random protocol), the draws and the weights"))

    def __post_init__(self):
        for name, allowed in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("precision", PRECISIONS)):
            if getattr(self, name) not in allowed:
                raise GenrekitError(f"unknown {name} '{getattr(self, name)}'; choose one of: {', '.join(allowed)}")

    def to_dict(self) -> dict:
        return asdict(self)
