"""The tags inside audio files, read and changed with mutagen (what beets and Picard use).

Every container speaks the same few logical fields (:data:`FIELDS`), each a list of strings:

============================  ===========================  ==================================
container (mutagen class)     tag format                   the genre field
============================  ===========================  ==================================
MP3, WAV, AIFF                ID3v2.4 (WAV/AIFF: a chunk)  ``TCON``
FLAC, Ogg Vorbis, Ogg Opus    Vorbis comments              ``GENRE``
M4A / MP4 (AAC, ALAC)         MP4 atoms                    ``©gen``
WavPack, Monkey's Audio, MPC  APEv2                        ``Genre``
WMA (ASF)                     ASF attributes               ``WM/Genre``
============================  ===========================  ==================================

genrekit's own fields (``GENREKIT_*``; ``STYLE`` for the musicnn styles) are user-defined text
frames of each format: ``TXXX:NAME`` in ID3, ``NAME`` in Vorbis comments, APEv2 and ASF,
``----:com.apple.iTunes:NAME`` in MP4. Only tags are touched: mutagen rewrites the tag blocks
and leaves the audio data as it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from genrekit.errors import GenrekitError

# logical field -> the name of a user-defined text field
OWN_FIELDS = {
    "genrekit_genre": "GENREKIT_GENRE",
    "genrekit_probability": "GENREKIT_PROBABILITY",
    "genrekit_model": "GENREKIT_MODEL",
    "genrekit_model_sha256": "GENREKIT_MODEL_SHA256",
    "style": "STYLE",
}
STANDARD_FIELDS = ("genre", "artist", "album", "albumartist", "title")
FIELDS = (*STANDARD_FIELDS, *OWN_FIELDS)

_ID3 = {"genre": "TCON", "artist": "TPE1", "album": "TALB", "albumartist": "TPE2", "title": "TIT2"}
_VORBIS = {"genre": "GENRE", "artist": "ARTIST", "album": "ALBUM", "albumartist": "ALBUMARTIST", "title": "TITLE"}
_MP4 = {"genre": "\xa9gen", "artist": "\xa9ART", "album": "\xa9alb", "albumartist": "aART", "title": "\xa9nam"}
_APE = {"genre": "Genre", "artist": "Artist", "album": "Album", "albumartist": "Album Artist", "title": "Title"}
_ASF = {
    "genre": "WM/Genre",
    "artist": "Author",
    "album": "WM/AlbumTitle",
    "albumartist": "WM/AlbumArtist",
    "title": "Title",
}
_MP4_FREEFORM = "----:com.apple.iTunes:"

# mutagen class name -> (tag format, the container's name in messages)
CONTAINERS = {
    "MP3": ("id3", "MP3"),
    "WAVE": ("id3", "WAV"),
    "AIFF": ("id3", "AIFF"),
    "FLAC": ("vorbis", "FLAC"),
    "OggVorbis": ("vorbis", "Ogg Vorbis"),
    "OggOpus": ("vorbis", "Ogg Opus"),
    "MP4": ("mp4", "MP4/M4A"),
    "WavPack": ("ape", "WavPack"),
    "MonkeysAudio": ("ape", "Monkey's Audio"),
    "Musepack": ("ape", "Musepack"),
    "ASF": ("asf", "WMA/ASF"),
}
MULTI_VALUED = {"id3", "vorbis", "mp4", "ape", "asf"}  # every format above holds several genres


class TagError(GenrekitError):
    """The tags of a file cannot be read or written."""


@dataclass
class TagFile:
    """An opened file's tags: :meth:`get` and :meth:`set` logical fields, then :meth:`save`.

    Open with :func:`open_tags`.
    """

    path: Path
    kind: str  # id3, vorbis, mp4, ape, asf
    container: str
    audio: object  # the mutagen file

    @property
    def _tags(self):
        if self.audio.tags is None:
            self.audio.add_tags()
        return self.audio.tags

    def get(self, field: str) -> list[str]:
        """The values of a logical field (empty when absent)."""
        tags = self.audio.tags
        if tags is None:
            return []
        if self.kind == "id3":
            frame = tags.get(_ID3[field] if field in _ID3 else f"TXXX:{OWN_FIELDS[field]}")
            if frame is None:
                return []
            return [str(g) for g in (frame.genres if field == "genre" else frame.text)]
        key = self._key(field)
        if key not in tags:
            return []
        values = tags[key]
        if self.kind == "mp4":
            return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]
        if self.kind == "ape":
            return list(values)  # an APEv2 text value iterates over its NUL-separated parts
        return [str(v) for v in values]

    def set(self, field: str, values: list[str] | None) -> None:
        """Set a logical field to ``values``, or remove it for ``None`` or ``[]``."""
        tags = self._tags
        if self.kind == "id3":
            from mutagen.id3 import TXXX, Frames

            key = _ID3[field] if field in _ID3 else f"TXXX:{OWN_FIELDS[field]}"
            tags.delall(key)
            if values:
                frame = (
                    Frames[key](encoding=3, text=list(values))
                    if field in _ID3
                    else TXXX(encoding=3, desc=OWN_FIELDS[field], text=list(values))
                )
                tags.add(frame)
            return
        key = self._key(field)
        if not values:
            if key in tags:
                del tags[key]
            return
        if self.kind == "mp4" and key.startswith(_MP4_FREEFORM):
            from mutagen.mp4 import MP4FreeForm

            tags[key] = [MP4FreeForm(v.encode("utf-8")) for v in values]
        else:
            tags[key] = list(values)

    def _key(self, field: str) -> str:
        table = {"vorbis": _VORBIS, "mp4": _MP4, "ape": _APE, "asf": _ASF}[self.kind]
        if field in table:
            return table[field]
        name = OWN_FIELDS[field]
        return _MP4_FREEFORM + name if self.kind == "mp4" else name

    def save(self) -> None:
        """Write the tags into the file (in place: see :mod:`genrekit.tagging.safe` for the safe way).

        Raises
        ------
        TagError
            mutagen cannot write them
        """
        try:
            if self.kind == "id3":
                self.audio.save(v2_version=4)
            else:
                self.audio.save()
        except Exception as exc:  # noqa: BLE001 - mutagen raises many types
            raise TagError(f"cannot write the tags of '{self.path}' ({type(exc).__name__}: {exc})") from None

    def read(self, fields=FIELDS) -> dict[str, list[str]]:
        """The logical fields that have values."""
        return {f: v for f in fields if (v := self.get(f))}


def open_tags(path: str | os.PathLike) -> TagFile:
    """Open the tags of an audio file.

    Raises
    ------
    TagError
        the file cannot be read, its tags are broken, or its container holds no tags genrekit writes
    """
    import mutagen

    path = Path(path)
    try:
        audio = mutagen.File(path)
    except mutagen.MutagenError as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, OSError):
            raise TagError(f"cannot read '{path}' ({cause.strerror or cause})") from None
        raise TagError(
            f"the tags of '{path}' are broken ({exc}); repair them with a tag editor, or re-encode"
        ) from None
    except Exception as exc:  # noqa: BLE001 - a broken file can raise anything in a parser
        raise TagError(
            f"the tags of '{path}' are broken ({type(exc).__name__}: {exc}); repair them, or re-encode"
        ) from None
    name = type(audio).__name__ if audio is not None else None
    if name not in CONTAINERS:
        what = f"this container ({name})" if name else "a container mutagen does not recognise"
        supported = ", ".join(sorted({c for _, c in CONTAINERS.values()}))
        raise TagError(f"'{path}': genrekit cannot write tags into {what}; it writes them into {supported}")
    kind, container = CONTAINERS[name]
    return TagFile(path, kind, container, audio)


def read_names(path: str | os.PathLike) -> dict[str, str]:
    """The ``artist``, ``album`` and ``title`` of a file (several values joined by ``; ``), ``""``
    for each one it lacks: never an error, whatever the file (a file without tags, or with broken
    ones, or that mutagen does not read, has none)."""
    from genrekit.schema import NAME_TAGS

    try:
        tags = open_tags(path)
        return {name: "; ".join(tags.get(name)) for name in NAME_TAGS}
    except Exception:  # noqa: BLE001 - names are a courtesy: the row stands without them
        return dict.fromkeys(NAME_TAGS, "")
