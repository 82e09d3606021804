"""Analysing a song from a few of its windows: ``k`` patches spread evenly, decoded alone.

A genre does not need every 3-s patch of a song. For the musicnn kind (one window = one patch of
187 log-mel frames) the ``k`` chosen patches are those at the centres of ``k`` equal parts of the
song's complete patches; each is decoded by seeking (:class:`genrekit.audio_pieces.PieceReader`)
with the 256 samples of context its first mel frame needs, so that its frames, and hence its
embedding and probabilities, are those the full analysis computes for it. The song's
probabilities are the mean over the analysed windows, as in the full analysis.

A few windows settle a song of one genre, never a close race between two (a song of several
genres). So the sample grows in stages (:class:`Escalation`): ``k``, then ``3k`` windows, then
``9k``..., and the song is analysed whole when the next stage would reach all its windows; the
analysis stops at the first stage whose top genre is :func:`settled`. A stage that the lead
measured so far would not settle is skipped (a close race goes from ``k`` windows straight to
all). With an odd growth the windows of one stage are among those of the next (the centre of each
of ``k`` equal parts is the centre of the middle of its ``growth`` sub-parts), so no window is
analysed twice, and a song that goes whole keeps the embeddings of the patches its stages
analysed (:meth:`genrekit.features.musicnn.MusicnnStream.reuse`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from genrekit.audio import DecodeReport
from genrekit.audio_pieces import PieceReader
from genrekit.escalation import Escalation
from genrekit.features.musicnn import PATCH_FRAMES, MusicnnConfig, MusicnnStream
from genrekit.features.windows import WindowProbabilities
from genrekit.inference import Classifier
from genrekit.presence import PresenceCheck

_HOP, _N_FFT = 256, 512  # musicnn's mel front end
# samples one patch's frames read: 186 hops and one FFT
PIECE_SAMPLES = (PATCH_FRAMES - 1) * _HOP + _N_FFT


@dataclass
class Sampled:
    """What :func:`analyse_sampled` found: the analysed windows and the windows the full analysis
    has, or (``windows`` None) that the song must be analysed whole, with the embeddings
    ``(n_bins,)`` of the complete patches already analysed, by patch index."""

    windows: WindowProbabilities | None
    total: int = 0
    known: dict[int, np.ndarray] = field(default_factory=dict)


def settled(probabilities: np.ndarray, *, n: int, z: float, m: int | None = None) -> bool:
    """Whether the top genre of the mean of ``len(probabilities)`` windows' probabilities
    ``(windows, genres)``, drawn from the song's ``n`` windows, is that of all ``n``: its mean lead
    over the runner-up, window by window, exceeds ``z`` standard errors of that mean (drawn without
    replacement: the finite-population correction ``sqrt(1 - m / n)``). All ``n`` windows are
    settled; one window (no spread to measure) is not. With ``m``: whether ``m`` windows would be,
    were the lead's mean and spread on them those measured here (the size a next stage needs).
    """
    seen = len(probabilities)
    m = seen if m is None else m
    if m >= n:
        return True
    if seen < 2:
        return False
    first, second = np.argsort(-probabilities.mean(axis=0), kind="stable")[:2]
    lead = probabilities[:, first] - probabilities[:, second]
    error = lead.std(ddof=1) / math.sqrt(m) * math.sqrt(1 - m / n)
    return bool(lead.mean() > z * error)


def spread(n: int, k: int) -> list[int]:
    """``k`` of the indices ``0 .. n-1`` spread evenly: the centre of each of ``k`` equal parts."""
    return sorted({int((i + 0.5) * n / k) for i in range(k)})


def full_windows(n_samples: int, *, min_tail_frames: float) -> tuple[int, int]:
    """(complete patches, windows) of the full analysis of ``n_samples`` at 16 kHz (the last
    partial patch is a window when it holds at least ``min_tail_frames`` frames, or is all there is)."""
    frames = 1 + n_samples // _HOP
    complete, rest = divmod(frames, PATCH_FRAMES)
    tail = rest >= min_tail_frames or (complete == 0 and rest > 0)
    return complete, complete + int(tail)


def too_short(total: int, *, k: int, escalation: Escalation | None) -> bool:
    """Whether a song of ``total`` windows is analysed whole from the start: with ``escalation``, it
    has no stage between ``k`` and all (a 30-s clip at k = 4). Sampling it would save a few patches,
    and the mean of k windows is more extreme than the whole clip's, on which the temperature and
    the confident threshold were fitted."""
    return escalation is not None and k * escalation.growth > total


def samplable(classifier: Classifier) -> bool:
    """Whether a classifier's windows are single musicnn patches, which can be analysed alone."""
    f = classifier.features
    return f.kind == "musicnn" and f.segment_frames == 1 and f.hop_frames == 1


def analyse_sampled(
    classifier: Classifier,
    reader: PieceReader,
    *,
    k: int,
    escalation: Escalation | None,
    check: PresenceCheck,
    report: DecodeReport,
) -> Sampled:
    """Probabilities of ``k`` patches spread over the song (more, in stages, until the top genre
    is settled: ``escalation``; ``None``: ``k`` only), and the windows the full analysis has;
    or that it must be analysed whole: its duration unknown, its end missing, fewer windows than
    the second stage's (with ``escalation``), or the stage not fewer than its windows (the patches
    analysed so far then come with it).

    Parameters
    ----------
    classifier : a musicnn-kind classifier (see :func:`samplable`)
    reader : the open song, at 16 kHz
    k : patches of the first stage
    escalation : how the sample grows while unsettled
    check : given every decoded piece
    report : filled in by the decoding
    """
    whole = Sampled(None)
    if reader.declared_s is None:
        return whole
    stream = classifier.stream()
    if not isinstance(stream, MusicnnStream):
        return whole
    f = classifier.features
    if not isinstance(f, MusicnnConfig):
        return whole
    sr = f.sample_rate
    complete, total = full_windows(round(reader.declared_s * sr), min_tail_frames=f.min_tail_seconds * sr / _HOP)
    done: dict[int, np.ndarray] = {}  # patch index -> its probabilities
    known: dict[int, np.ndarray] = {}  # patch index -> its embedding
    n_samples = 0
    if too_short(total, k=k, escalation=escalation):
        return Sampled(None, total, known)
    while True:
        if k >= total or k > complete:
            return Sampled(None, total, known)
        chosen = [p for p in spread(complete, k) if p not in done]
        starts = [max(0, p * PATCH_FRAMES * _HOP - _HOP) for p in chosen]
        pieces = reader.pieces(starts_s=[s / sr for s in starts], seconds=PIECE_SAMPLES / sr, report=report)
        if report.truncated:
            return whole
        power = []
        for p, piece in zip(chosen, pieces):
            check.push(piece)
            n_samples += len(piece)
            if p == 0:  # the centring pad the full analysis gives the first frame
                piece = np.concatenate([np.zeros(_HOP, np.float32), piece])
            frames = stream.mel.frames_within(piece)
            if frames.shape[1] < PATCH_FRAMES:
                return whole  # the header promised more than the file holds
            power.append(frames[:, :PATCH_FRAMES])
        embedded = stream.embed_patches(np.stack(power))
        known.update((p, embedded[:, i]) for i, p in enumerate(chosen))
        probs = classifier.probabilities(embedded[:, i : i + 1] for i in range(embedded.shape[1]))
        done.update(zip(chosen, probs))
        index = sorted(done)
        analysed = np.stack([done[p] for p in index])
        # no music in the pieces (silence, noise): there is no genre to settle
        if escalation is None or check.verdict() is not None or settled(analysed, n=total, z=escalation.z):
            return Sampled(WindowProbabilities(np.array(index, dtype=np.int64), analysed, n_samples, len(index)), total)
        k *= escalation.growth
        while k < total and not settled(analysed, n=total, z=escalation.z, m=k):
            k *= escalation.growth  # a stage that the lead measured so far would not settle is skipped
