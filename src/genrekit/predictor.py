"""Predicting the genre of any audio file, streamed so that memory stays bounded.

>>> import genrekit
>>> result = genrekit.predict("song.mp3")  # doctest: +SKIP
>>> result.top[0]  # doctest: +SKIP
('jazz', 0.87)

The audio is decoded block by block and goes through the model's own features and windows
(:class:`genrekit.inference.Classifier`); each window's probabilities form the timeline, and the
song's probabilities are their mean. Values are not rounded: display is the caller's business.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from genrekit.audio import AudioError, DecodeReport, resample, stream_audio, to_mono
from genrekit.audio_pieces import PieceReader
from genrekit.checkpoint import Checkpoint, bundled_model_path, resolve_model_path  # noqa: F401 - re-exported
from genrekit.errors import GenrekitError
from genrekit.escalation import DEFAULT_ESCALATION, Escalation
from genrekit.features.musicnn import MusicnnStream
from genrekit.inference import TrainedModel, WindowProbabilities
from genrekit.model_loading import RUNTIMES, load_trained_model
from genrekit.precision import DEFAULT_PRECISION
from genrekit.prediction import Prediction, Segment
from genrekit.presence import PresenceCheck, PresenceConfig
from genrekit.sampling import analyse_sampled, samplable

if TYPE_CHECKING:
    import torch

    from genrekit.features import FeatureConfig

__all__ = ["RUNTIMES", "Prediction", "Predictor", "Segment"]


class Predictor:
    """A trained model ready to predict; load once, predict many inputs.

    Parameters
    ----------
    checkpoint : TrainedModel
        The trained model (:class:`genrekit.inference.TrainedModel`): a torch checkpoint, or its
        ONNX export (:class:`genrekit.runtime.OnnxModel`, run without torch).
    name : str or None
        How results name the model (default: its architecture).
    device : str or torch.device
        Where a torch model runs.
    presence : PresenceConfig or None
        When a signal counts as no music, and a prediction as confident.
    """

    def __init__(
        self,
        checkpoint: TrainedModel,
        *,
        name: str | None = None,
        device: str | torch.device = "cpu",
        presence: PresenceConfig | None = None,
    ):
        self.checkpoint = checkpoint
        self.presence = presence or PresenceConfig()
        self.classifier = checkpoint.classifier(device=device)
        self.runtime = checkpoint.runtime
        self.name = name or checkpoint.model_name

    @classmethod
    def load(
        cls,
        model: str | os.PathLike | None = None,
        *,
        device: str | torch.device = "cpu",
        runtime: str = "auto",
        threads: int | None = None,
        precision: str = DEFAULT_PRECISION,
    ) -> Predictor:
        """Load a checkpoint file, or the bundled model when ``model`` is None.

        Parameters
        ----------
        model : str, os.PathLike or None
            A checkpoint file or a bundled model's name.
        device : str or torch.device
            Where a torch model runs.
        runtime : str
            ``"auto"``: the checkpoint's ONNX export when it is current, onnxruntime is installed
            and ``device`` is the CPU, else torch; ``"onnx"`` or ``"torch"`` to insist.
        threads : int or None
            Threads of the ONNX runtime's sessions (default: one per core).
        precision : str
            The backbone's: ``"fp32"``, or ``"int8"`` (the bundled model's quantised copy, on
            onnxruntime; ``benchmarks/results/int8.md`` measures its agreement with fp32).

        Returns
        -------
        Predictor

        Raises
        ------
        GenrekitError
            The file is missing or not a genrekit checkpoint, or the runtime asked for is unavailable.
        """
        trained, name = load_trained_model(model, device=device, runtime=runtime, threads=threads, precision=precision)
        return cls(trained, name=name, device=device)

    @property
    def labels(self) -> list[str]:
        return self.classifier.labels

    @property
    def seen_ids(self) -> set[str]:
        """Ids of the tracks the model was trained or early-stopped on: results on them are no evaluation."""
        return self.checkpoint.seen_ids

    @property
    def feature_config(self) -> FeatureConfig:
        return self.classifier.features

    @property
    def sample_rate(self) -> int:
        """The rate the model's features read audio at."""
        return self.feature_config.sample_rate

    @property
    def info(self) -> dict[str, Any]:
        """Model name, architecture, labels, features, training data and measured accuracy."""
        meta = self.checkpoint.metadata
        return {
            "name": self.name,
            "architecture": self.checkpoint.model_name,
            "labels": self.labels,
            "features": self.feature_config.to_dict(),
            **{k: meta[k] for k in ("description", "trained_on", "protocol", "accuracy", "created") if k in meta},
        }

    def _prediction(
        self,
        name: str,
        w: WindowProbabilities,
        duration: float,
        t0: float,
        no_music: str | None = None,
        report: DecodeReport | None = None,
        sampled: tuple[int, int] | None = None,
    ) -> Prediction:
        f = self.feature_config
        fps, size = f.frames_per_second, f.segment_frames
        timeline = [
            Segment(float(s / fps), float(min((s + size) / fps, duration)), dict(zip(self.labels, map(float, p))))
            for s, p in zip(w.starts, w.probabilities)
        ]
        mean = w.mean if len(w.probabilities) else np.full(len(self.labels), np.nan)
        return Prediction(
            path=name,
            duration_s=float(duration),
            probabilities=dict(zip(self.labels, map(float, mean))),
            timeline=timeline,
            model=self.name,
            seconds=time.perf_counter() - t0,
            no_music=no_music,
            confident=no_music is None and float(np.max(mean)) >= self.presence.confident,
            truncated=bool(report and report.truncated),
            declared_s=report.declared_s if report else None,
            sampled=sampled,
        )

    def predict_file(
        self,
        path: str | os.PathLike,
        *,
        max_seconds: float | None = None,
        max_duration: float | None = None,
        timeout_s: float | None = None,
        on_decoded: Callable[[float], None] | None = None,
        pace: Callable[[Iterator[np.ndarray]], Iterator[np.ndarray]] | None = None,
        patches: int | None = None,
        escalation: Escalation | None = DEFAULT_ESCALATION,
        styles: bool = False,
    ) -> Prediction:
        """Genres of one audio file, streamed: memory does not grow with its length.

        Parameters
        ----------
        path : str or os.PathLike
            Any audio file; a ``.png`` is read as a Kaggle GTZAN spectrogram image, for models
            whose features can be read from images.
        max_seconds, max_duration, timeout_s : float or None
            Analyse only the beginning; refuse a longer file, or one that takes longer (see
            :func:`genrekit.audio.stream_audio`).
        on_decoded : callable or None
            ``on_decoded(seconds)`` is called as each block of audio is decoded (progress bars).
        pace : callable or None
            Wraps the decoded blocks, the analysis of each happening between two of its ``next``
            calls (the server takes turns at the model with it).
        patches : int or None
            ``k`` analyses only ``k`` windows spread evenly over the song, decoding only them
            (:mod:`genrekit.sampling`; the musicnn kind, without ``max_seconds``); the song is
            analysed whole when it has no more than the stage's windows (with ``escalation``: fewer
            than the second stage's, as a 30-s clip at ``k`` 4), its duration is unknown or its end
            is missing. ``None`` analyses every window.
        escalation : Escalation or None
            With ``patches``, while the sample's top genre is not settled, analyse more windows in
            stages (:class:`genrekit.escalation.Escalation`): a few windows cannot settle a close
            race (a song of several genres). ``None``: the ``k`` windows only.
        styles : bool
            Fill the prediction's ``styles`` with the musicnn MSD tags' probabilities, read in the
            same pass (:mod:`genrekit.tagging.styles`; ``{}`` without music; the song is then
            analysed whole).

        Returns
        -------
        Prediction

        Raises
        ------
        AudioError
            The file cannot be decoded, is longer than ``max_duration`` or takes longer than ``timeout_s``.
        GenrekitError
            An image given to a model that cannot read images, or ``styles`` asked of a model without them.

        Examples
        --------
        >>> import numpy as np, soundfile as sf, tempfile, pathlib
        >>> from genrekit import Predictor
        >>> predictor = Predictor.load()  # the bundled model; load once, predict many files
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "tone.wav"
        >>> sf.write(path, 0.3 * np.sin(np.arange(22050 * 5) * 2 * np.pi * 440 / 22050), 22050)
        >>> result = predictor.predict_file(path)
        >>> result.genre, result.no_music.startswith("steady tones"), result.duration_s
        (None, True, 5.0)
        """
        t0 = time.perf_counter()
        f = self.feature_config
        sink: list[np.ndarray] | None
        classifier, sink = self.classifier, None
        if styles:
            from genrekit.tagging.styles import check_styles, tapped

            sink = []
            classifier = tapped(self.classifier, check_styles(self), sink)
        if Path(path).suffix.lower() == ".png":
            if not f.reads_images:
                raise GenrekitError(
                    f"'{path}' is an image: only models trained on kaggle-image features read spectrogram images"
                )
            from genrekit.features.kaggle_image import CLIP_SECONDS, image_features

            return self._prediction(str(path), self.classifier.analyse(frames=image_features(path)), CLIP_SECONDS, t0)
        known: dict[int, np.ndarray] = {}  # embeddings of patches a sampled analysis that went whole made
        if patches is not None and max_seconds is None and not styles and samplable(self.classifier):
            sampled = self._predict_sampled(path, patches, max_duration, on_decoded, t0, escalation)
            if isinstance(sampled, Prediction):
                if timeout_s is not None and time.perf_counter() - t0 > timeout_s:
                    took = f"it took longer than {timeout_s:g} s to decode"
                    raise AudioError(path, f"{took}; raise the limit (--file-timeout) to tag it")
                return sampled
            known = sampled
        stream = classifier.stream()
        if known and isinstance(stream, MusicnnStream):  # the sampled patches are not embedded again
            stream.reuse(known)
        check, report = PresenceCheck(f.sample_rate, self.presence), DecodeReport()
        audio = stream_audio(
            path,
            sr=f.sample_rate,
            max_seconds=max_seconds,
            max_duration=max_duration,
            timeout_s=timeout_s,
            report=report,
        )
        blocks: Iterator[np.ndarray] = map(check.push, audio if pace is None else pace(audio))
        if on_decoded is not None:
            blocks = _reporting(blocks, on_decoded, f.sample_rate)
        w = classifier.analyse(blocks=blocks, stream=stream)
        prediction = self._prediction(str(path), w, w.n_samples / f.sample_rate, t0, check.verdict(), report)
        if sink is not None:
            from genrekit.tagging.styles import mean_styles

            prediction.styles = mean_styles(sink, prediction)
        return prediction

    def _predict_sampled(
        self,
        path: str | os.PathLike,
        k: int,
        max_duration: float | None,
        on_decoded: Callable[[float], None] | None,
        t0: float,
        escalation: Escalation | None,
    ) -> Prediction | dict[int, np.ndarray]:
        """The sampled prediction, or the embeddings of the patches analysed before it went whole."""
        if k < 1:
            raise GenrekitError(f"patches must be at least 1, not {k}")
        check, report = PresenceCheck(self.sample_rate, self.presence), DecodeReport()
        with PieceReader(path, sr=self.sample_rate, max_duration=max_duration) as reader:
            found = analyse_sampled(self.classifier, reader, k=k, escalation=escalation, check=check, report=report)
        if found.windows is None:
            return found.known
        w, total = found.windows, found.total
        result = self._prediction(str(path), w, report.decoded_s, t0, check.verdict(), report, (len(w.starts), total))
        if on_decoded is not None:  # the song's seconds are covered, though only its pieces were decoded
            on_decoded(result.duration_s)
        return result

    def predict_signal(self, y: np.ndarray, sr: int, *, name: str = "signal") -> Prediction:
        """Genres of a signal in memory: mono ``(n,)``, or ``(n, channels)`` / ``(channels, n)`` downmixed.

        Parameters
        ----------
        y : np.ndarray
            The samples.
        sr : int
            Their rate (resampled to the model's).
        name : str
            The prediction's ``path``.

        Returns
        -------
        Prediction

        Raises
        ------
        GenrekitError
            The signal is empty, not finite, or of a shape that is not audio.
        """
        t0 = time.perf_counter()
        y = resample(to_mono(y), sr, self.sample_rate)
        check = PresenceCheck(self.sample_rate, self.presence)
        w = self.classifier.analyse(blocks=[check.push(y)])
        return self._prediction(name, w, len(y) / self.sample_rate, t0, check.verdict())

    def predict(
        self, source: str | os.PathLike | np.ndarray, *, sr: int | None = None, max_seconds: float | None = None
    ) -> Prediction:
        """Genres of a file path (:meth:`predict_file`), or of a signal in memory (give its ``sr``:
        :meth:`predict_signal`); ``max_seconds`` applies to a file.

        Raises
        ------
        GenrekitError
            A signal without its ``sr``, or as :meth:`predict_file` / :meth:`predict_signal`.
        """
        if isinstance(source, np.ndarray):
            if sr is None:
                raise GenrekitError("give the sample rate of the signal: predict(y, sr=...)")
            return self.predict_signal(source, sr)
        return self.predict_file(source, max_seconds=max_seconds)

    def predict_files(
        self,
        paths: Iterable[str | os.PathLike],
        *,
        workers: int = 2,
        max_seconds: float | None = None,
        max_duration: float | None = None,
        timeout_s: float | None = None,
        patches: int | None = None,
        escalation: Escalation | None = DEFAULT_ESCALATION,
    ) -> Iterator[tuple[str, Prediction | GenrekitError]]:
        """Predict many files, ``workers`` threads at a time; a bad file is yielded as its error.

        Parameters
        ----------
        paths : iterable of str or os.PathLike
            The files.
        workers : int
            Threads (processes use the cores better: :func:`genrekit.workers.predict_files`).
        max_seconds, max_duration, timeout_s, patches, escalation
            Applied to each file, as in :meth:`predict_file`.

        Yields
        ------
        tuple of (str, Prediction or GenrekitError)
            Each path with its prediction or its error, in the order of ``paths``.
        """

        from genrekit.file_threads import predict_in_threads

        return predict_in_threads(
            self,
            paths,
            workers=workers,
            max_seconds=max_seconds,
            max_duration=max_duration,
            timeout_s=timeout_s,
            patches=patches,
            escalation=escalation,
        )


def _reporting(blocks: Iterable[np.ndarray], on_decoded: Callable[[float], None], sr: int) -> Iterator[np.ndarray]:
    for block in blocks:
        on_decoded(len(block) / sr)
        yield block
