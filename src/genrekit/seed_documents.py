"""The seed documents' own protocols, as each document states them, written down as data
(:data:`SEED_PROTOCOLS`); :mod:`genrekit.seed_protocols` runs them. This module is light (no torch).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from genrekit.config import TrainConfig

__all__ = ["PROTOCOL_NAMES", "SEED_PROTOCOLS", "SeedProtocol", "on_images"]

# Keras' defaults where a seed names only the optimiser: Adam/Nadam 1e-3, SGD 0.01 without
# momentum, batch 32, no weight decay; each epoch one shuffled pass over the samples.
_KERAS = TrainConfig(
    optimizer="adam",
    schedule="constant",
    lr=1e-3,
    weight_decay=0.0,
    batch_size=32,
    windows_per_track=1,
    balance=False,
    augment=False,
    restore_best=False,
)


@dataclass(frozen=True)
class SeedProtocol:
    """One seed document's protocol, as stated (``notes`` says what it leaves unstated)."""

    key: str
    claimed: float | None
    claim: str
    models: dict[str, dict]  # architecture -> TrainConfig overrides of that model
    input_kind: str  # GTZAN part: "images" or "audio"
    features: dict  # make_feature_config arguments; segment_seconds is the seed's sample
    split_by: str  # "segment" (windows drawn independently) or "track"
    shares: tuple[float, float, float]  # train, validation, test shares of what is split
    train: TrainConfig
    repetitions: int = 1
    genres: tuple[str, ...] | None = None  # None: all ten
    reported: str = "test"  # the side the seed's figure is read on ("validation" for S001)
    notes: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["train"] = self.train.to_dict()
        return d


SEED_PROTOCOLS: dict[str, SeedProtocol] = {
    p.key: p
    for p in (
        SeedProtocol(
            key="seed000",
            claimed=0.7085,
            claim="70.85 % test accuracy",
            models={"s000_cnn": {}},
            input_kind="images",
            features={"kind": "kaggle-image", "segment_seconds": 30.0},
            split_by="track",
            shares=(0.76, 0.04, 0.2),
            train=replace(_KERAS, optimizer="nadam", schedule="decay", epochs=150, patience=150),
            notes="800 train (5 % of it validation) / 199 test images, 150 epochs, Nadam with learning-rate "
            "decay; the decay's rate is unstated (here: inverse time, half the rate at the end).",
        ),
        SeedProtocol(
            key="seed001",
            claimed=0.3445,
            claim="34.45 % validation (ANN); CNN 32.33 %",
            models={"s001_ann": {"batch_size": 700}, "s001_cnn": {"batch_size": 70}},
            input_kind="images",
            features={"kind": "kaggle-image", "segment_seconds": 30.0},
            split_by="track",
            shares=(0.7, 0.3, 0.0),
            reported="validation",
            train=replace(_KERAS, epochs=100, patience=100),
            notes="grey-scale whole images (here: the matrix the image encodes), 700 train / 300 validation, "
            "100 epochs, Adam 1e-3; mini-batches of 70 (CNN) and the whole 700 (ANN), as the layer "
            "sizes printed show; the figure is the validation side after the last epoch.",
        ),
        SeedProtocol(
            key="seed002",
            claimed=0.48,
            claim="48 % test accuracy",
            models={"s002_cnn": {}},
            input_kind="audio",
            features={"kind": "logmel", "n_mels": 64, "segment_seconds": 3.0, "segment_overlap": 0.0},
            split_by="track",
            shares=(0.5, 0.2, 0.3),
            train=replace(_KERAS, epochs=30, patience=5, restore_best=True),
            notes="64 mel bands, 3-s segments, songs split 50/20/30, 30 epochs with patience 5; the "
            "optimiser is unstated (here: Adam 1e-3); accuracy over test segments.",
        ),
        SeedProtocol(
            key="seed003",
            claimed=0.9461,
            claim="94.61 ± 0.40 % over five random splits",
            models={"s003_cnn": {}},
            input_kind="audio",
            features={"kind": "logmel", "segment_seconds": 3.0, "segment_overlap": 0.0},
            split_by="segment",
            shares=(0.8, 0.1, 0.1),
            repetitions=5,
            train=replace(_KERAS, epochs=30, patience=5, restore_best=True),
            notes="3-s segments drawn at random 80/20 (the 20 % is validation and test), five repetitions; "
            "mel bands, optimiser and epochs unstated (here: 128 bands, Adam 1e-3, at most 30 "
            "epochs with patience 5).",
        ),
        SeedProtocol(
            key="seed004",
            claimed=None,
            claim="no figure",
            models={"s004_parallel_cnn": {}, "s004_cnn_rnn": {}},
            input_kind="audio",
            features={
                "kind": "logmel",
                "n_mels": 80,
                "hop_length": 551,
                "segment_seconds": 2.0,
                "segment_overlap": 0.0,
            },
            split_by="segment",
            shares=(0.8, 0.0, 0.2),
            genres=("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop"),
            train=replace(_KERAS, optimizer="sgd", lr=0.01, epochs=50, patience=50),
            notes="8 genres, 15 log-mel patches of 80 x 80 per song (here: 80 bands at ~40 frames/s, 2-s "
            "patches), 80 % of the data points for training, mini-batch SGD, 50 epochs; which 8 "
            "genres is unstated (here: the first 8 alphabetically).",
        ),
    )
}
PROTOCOL_NAMES = tuple(SEED_PROTOCOLS)


def on_images(protocol: SeedProtocol) -> SeedProtocol:
    """An audio protocol run on the Kaggle image matrices instead (all 999 clips), cut into windows
    of the same length: more tracks than the audio we have, at the images' coarser resolution."""
    if protocol.input_kind == "images":
        return protocol
    seconds = protocol.features.get("segment_seconds", 3.0)
    features = {"kind": "kaggle-image", "segment_seconds": seconds, "segment_overlap": 0.0}
    return replace(protocol, input_kind="images", features=features)
