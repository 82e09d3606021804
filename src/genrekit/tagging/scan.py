"""The input scan: the files named, the audio files of the folders named (recursively) and the
paths of manifests, each resolved path once; and what a folder held that is not tagged.

Anything in a folder that is not a regular file (a broken or looping symbolic link, a named pipe,
a device...) is found without opening it and becomes an item with a ``problem``, so that it gets
an error row. Items are keyed by the resolved path, whatever the spelling of the folder.

Light: no numpy, no audio library.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from genrekit.errors import GenrekitError

_SPECIAL = {
    stat.S_IFIFO: "named pipe",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
}


@dataclass(frozen=True)
class LibraryItem:
    """One input: ``path`` resolved (what its row is keyed by), and ``problem``, why it cannot be
    read when that is known without opening it (a broken link, a pipe...)."""

    path: Path
    problem: str | None = None


@dataclass
class Ignored:
    """The files of the folders searched that are not tagged, counted by kind (their extension)."""

    kinds: Counter = field(default_factory=Counter)

    def add(self, path: Path) -> None:
        self.kinds[path.suffix.lower() or "(no extension)"] += 1

    def line(self) -> str | None:
        """``ignored 3 files: 1 .png, 1 .cue, 1 .txt`` (most frequent first), or ``None`` when none was."""
        total = sum(self.kinds.values())
        if not total:
            return None
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.kinds.items(), key=lambda kv: (-kv[1], kv[0])))
        return f"ignored {total} file{'s' if total > 1 else ''} (not audio): {kinds}"


def _is_input(path: Path, images: bool) -> bool:
    from genrekit.audio import is_audio_path

    if path.suffix.lower() == ".png":  # album covers are not spectrograms: only the Kaggle geometry counts
        if not images:
            return False
        from genrekit.features.kaggle_image import is_kaggle_image  # light: reads the PNG header only

        return is_kaggle_image(path)
    return is_audio_path(path)


def _look(path: Path) -> tuple[LibraryItem, bool]:
    """What ``path`` leads to, seen without opening it, and whether it is a folder."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        key = Path(os.path.realpath(path.parent)) / path.name  # the link itself, not where it leads
        if exc.errno == errno.ELOOP:
            return LibraryItem(key, f"'{key}' is a symbolic link loop; fix or remove the link"), False
        if exc.errno == errno.ENOENT and os.path.islink(path):
            problem = f"'{key}' is a broken symbolic link (to '{os.readlink(path)}'); fix or remove the link"
            return LibraryItem(key, problem), False
        return LibraryItem(key, f"cannot read '{key}' ({exc.strerror})"), False
    key = Path(os.path.realpath(path))
    if stat.S_ISDIR(mode) or stat.S_ISREG(mode):
        return LibraryItem(key), stat.S_ISDIR(mode)
    kind = _SPECIAL.get(stat.S_IFMT(mode), "special file")
    return LibraryItem(key, f"'{key}' is not a regular file ({kind}); only audio files can be tagged"), False


def _folder_items(folder: Path, images: bool, ignored: Ignored) -> list[LibraryItem]:
    """The audio files in ``folder`` and below, sorted by path, and whatever there is not a regular file."""
    found: list[tuple[Path, LibraryItem]] = []
    searched: set[Path] = set()

    def search(d: Path, real: Path) -> None:
        if real in searched:  # a link back to a folder already searched
            return
        searched.add(real)
        try:
            entries = sorted(e.name for e in os.scandir(d))
        except OSError as exc:
            problem = f"cannot list the folder '{real}' ({exc.strerror}); check its permissions"
            found.append((d, LibraryItem(real, problem)))
            return
        for name in entries:
            if name.startswith("."):
                continue
            item, is_folder = _look(d / name)
            if is_folder:
                search(d / name, item.path)
            elif item.problem or _is_input(d / name, images):
                found.append((d / name, item))
            else:
                ignored.add(d / name)

    search(folder, Path(os.path.realpath(folder)))
    return [item for _, item in sorted(found, key=lambda f: f[0])]


def _unique(items: list[LibraryItem]) -> list[LibraryItem]:
    seen: set[Path] = set()
    return [i for i in items if not (i.path in seen or seen.add(i.path))]


def scan_inputs(
    inputs: list[str | bytes | os.PathLike], *, images: bool = False, ignored: Ignored | None = None
) -> list[LibraryItem]:
    """Each file named, and each audio file or thing that is not a regular file found recursively in
    the folders named (sorted, each resolved path once).

    With ``images``, folders also yield the PNGs that have the Kaggle spectrogram geometry. The
    other files of the folders are counted in ``ignored``, when given.

    Raises
    ------
    GenrekitError
        an input does not exist, or a folder holds nothing to tag
    """
    ignored = ignored if ignored is not None else Ignored()
    items: list[LibraryItem] = []
    for given in inputs:
        path = Path(os.fsdecode(given))
        if not os.path.lexists(path):
            raise GenrekitError(f"'{path}' does not exist; give audio files or folders")
        item, is_folder = _look(path)
        if is_folder:
            found = _folder_items(path, images, ignored)
            if not found:
                raise GenrekitError(f"no audio file found in folder '{path}' (searched recursively)")
            items += found
        else:
            items.append(item)
    return _unique(items)


def collect_inputs(inputs: list[str | bytes | os.PathLike], *, images: bool = False) -> list[Path]:
    """The resolved paths of the readable files of :func:`scan_inputs`."""
    return [i.path for i in scan_inputs(inputs, images=images) if i.problem is None]


def manifest_items(manifest: Path, *, ignored: Ignored | None = None) -> list[LibraryItem]:
    """The items of a manifest: one path per line (blank lines and ``#`` comments skipped), relative
    to the manifest's folder; a path that does not exist gets an error row."""
    items: list[LibraryItem] = []
    for line in manifest.read_text(encoding="utf-8", errors="surrogateescape").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        path = manifest.parent / line.strip()
        if os.path.lexists(path):
            items += scan_inputs([path], ignored=ignored)
        else:
            items.append(LibraryItem(path, f"'{path}' (listed in '{manifest}') does not exist"))
    return items


def list_items(inputs: list[str | os.PathLike], *, ignored: Ignored | None = None) -> list[LibraryItem]:
    """The items of folders, files and manifests (``.txt``), each resolved path once."""
    items: list[LibraryItem] = []
    for given in inputs:
        path = Path(os.fsdecode(given))
        is_manifest = path.suffix == ".txt" and path.is_file()
        items += manifest_items(path, ignored=ignored) if is_manifest else scan_inputs([path], ignored=ignored)
    return _unique(items)
