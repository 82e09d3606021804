"""genrekit for beets: the genre of each track (or album) predicted from its audio.

Install with ``pip install 'genrekit[beets]'`` and add ``genrekit`` to ``plugins`` in beets'
config. ``beet genrekit [QUERY]`` tags the items the query matches (``-a``: albums, one genre
each from the mean of its tracks' probabilities); with ``auto: yes`` every import is tagged. It
sets beets' genre (``genres`` in beets 2, ``genre`` before) and the flexible attributes
``genrekit_genre``, ``genrekit_probability``, ``genrekit_model``, ``genrekit_model_sha256`` (and
``genrekit_styles`` with ``styles: yes``), written into the files under the same names as
``genrekit tag`` writes them, when beets writes tags (its ``import.write`` setting, as every
beets command). The options are ``genrekit tag``'s::

    genrekit:
        auto: no              # tag on import
        per: file             # or album
        mode: keep            # keep (only items without a genre), replace or add
        min_confidence: 0.5   # lower predictions are left out
        model: null           # a checkpoint, or a bundled model's name (default: musicnn-gtzan)
        genre_map: {}         # label: name, over the defaults (Blues, ..., Hip-Hop, ...), or a file
        styles: no            # the musicnn MSD tags above style_threshold, as genrekit_styles
        style_threshold: 0.25
        force: no             # predict again items this model tagged already
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from beets import ui
from beets.plugins import BeetsPlugin

from genrekit.tagging.containers import OWN_FIELDS

FLEX_FIELDS = {
    "genrekit_genre": str,
    "genrekit_probability": float,
    "genrekit_model": str,
    "genrekit_model_sha256": str,
}


def _media_field(name: str, out_type):
    """The file field genrekit tag writes as ``name`` (``GENREKIT_*``), in every format mediafile knows."""
    from mediafile import ASFStorageStyle, MediaField, MP3DescStorageStyle, MP4StorageStyle, StorageStyle

    return MediaField(
        MP3DescStorageStyle(name),
        MP4StorageStyle(f"----:com.apple.iTunes:{name}"),
        StorageStyle(name),
        ASFStorageStyle(name),
        out_type=out_type,
    )


def _genres(obj) -> list[str]:
    if "genres" in type(obj)._fields:
        return list(obj.get("genres") or [])
    return [g.strip() for g in (obj.get("genre") or "").split(",") if g.strip()]


def _set_genres(obj, values: list[str]) -> None:
    if "genres" in type(obj)._fields:
        obj.genres = values
    else:
        obj.genre = ", ".join(values)


class GenrekitPlugin(BeetsPlugin):
    """``beet genrekit`` and the import stage (see the module doc)."""

    def __init__(self):
        super().__init__()
        self.config.add(
            {
                "auto": False,
                "per": "file",
                "mode": "keep",
                "min_confidence": 0.5,
                "model": None,
                "genre_map": {},
                "styles": False,
                "style_threshold": 0.25,
                "force": False,
                "workers": 2,
            }
        )
        for field, kind in FLEX_FIELDS.items():
            self.add_media_field(field, _media_field(OWN_FIELDS[field], kind))
        self._predictor = None
        if self.config["auto"].get(bool):
            self.import_stages = [self.imported]

    # ------------------------------------------------------------------ options

    def _rules(self):
        from genrekit.tagging.decide import GenreMap, Rules

        given = self.config["genre_map"].get()
        if isinstance(given, str):
            genre_map = GenreMap.load(Path(given).expanduser())
        else:
            genre_map = GenreMap({**GenreMap().names, **{str(k): str(v) for k, v in (given or {}).items()}})
        return Rules(
            mode=self.config["mode"].as_choice(["keep", "replace", "add"]),
            min_confidence=float(self.config["min_confidence"].get()),
            genre_map=genre_map,
        )

    def _model(self):
        from genrekit.predictor import Predictor
        from genrekit.tagging.engine import model_identity

        model = self.config["model"].get()
        if self._predictor is None:
            self._predictor = Predictor.load(model)
            if self.config["styles"].get(bool):
                from genrekit.tagging.styles import check_styles

                check_styles(self._predictor)
        return self._predictor, *model_identity(model)

    # ------------------------------------------------------------------ the work

    def _predict(self, items) -> list:
        """A :class:`genrekit.tagging.state.Record` or an error message per item, in order."""
        from genrekit.errors import GenrekitError
        from genrekit.tagging.engine import predict_record

        predictor, _, sha = self._model()
        styles = self.config["styles"].get(bool)

        def one(item):
            try:
                return predict_record(predictor, Path(item.filepath), sha, styles)
            except GenrekitError as exc:
                return str(exc)

        with ThreadPoolExecutor(max_workers=max(1, self.config["workers"].get(int))) as pool:
            return list(pool.map(one, items))

    def _apply(self, item, record, *, pretend: bool) -> bool:
        """Decide and set the fields of one item; whether it changed."""
        from genrekit.tagging.decide import decide
        from genrekit.tagging.engine import styles_of

        _, name, sha = self._model()
        if isinstance(record, str):
            self._log.warning("{}: {}", item.filepath, record)
            return False
        label = record.label
        probability = record.probabilities[label] if label is not None else 0.0
        current = {
            "genre": _genres(item),
            "genrekit_genre": [item["genrekit_genre"]] if "genrekit_genre" in item else [],
        }
        d = decide(
            current=current,
            label=label,
            probability=probability,
            no_music=record.no_music,
            rules=self._rules(),
            model=name,
            model_sha256=sha,
        )
        styles = styles_of(record, float(self.config["style_threshold"].get())) if record.styles is not None else None
        now = ", ".join(current["genre"]) or "(no genre)"
        if d.action != "write":
            self._log.info(
                "{}: {} -> {} {}: {} ({})", item, now, d.genre or "-", f"{probability:.0%}", d.action, d.reason
            )
            return False
        self._log.info("{}: {} -> {} {}{}", item, now, d.genre, f"{probability:.0%}", " (pretend)" if pretend else "")
        if pretend:
            return False
        _set_genres(item, d.changes["genre"])
        item["genrekit_genre"] = d.genre
        item["genrekit_probability"] = round(probability, 4)
        item["genrekit_model"] = name
        item["genrekit_model_sha256"] = sha
        if styles is not None:
            item["genrekit_styles"] = ", ".join(styles)
        return True

    def _todo(self, items) -> list:
        if self.config["force"].get(bool):
            return list(items)
        _, _, sha = self._model()
        return [i for i in items if i.get("genrekit_model_sha256") != sha]

    def tag_items(self, items, *, write: bool, pretend: bool = False) -> int:
        """Tag each item on its own; the number changed."""
        items = self._todo(items)
        changed = 0
        for item, record in zip(items, self._predict(items)):
            if self._apply(item, record, pretend=pretend):
                item.try_sync(write=write, move=False)
                changed += 1
        return changed

    def tag_album(self, album, *, write: bool, pretend: bool = False) -> int:
        """One genre for the album, from the mean of its tracks' probabilities; the number of items changed."""
        from genrekit.tagging.engine import album_probabilities
        from genrekit.tagging.state import Record

        items = list(album.items())
        if not self._todo(items):
            return 0
        records = self._predict(items)
        good = [r for r in records if not isinstance(r, str)]
        if not good:
            self._log.warning("{}: no track could be predicted", album)
            return 0
        probs, why = album_probabilities(good)
        styles = None
        if all(r.styles is not None for r in good):
            styles = {k: sum(r.styles.get(k, 0.0) for r in good) / len(good) for k in good[0].styles}
        mean = Record(0, 0, good[0].model_sha256, probs or good[0].probabilities, why, styles)
        changed = 0
        for item in items:
            if self._apply(item, mean, pretend=pretend):
                item.try_sync(write=write, move=False)
                changed += 1
        if changed:  # the album's own genre too, as beets shows albums
            _set_genres(album, _genres(items[0]))
            album.store(inherit=False)
        return changed

    # ------------------------------------------------------------------ beets' hooks

    def commands(self):
        cmd = ui.Subcommand("genrekit", help="predict genres from the audio (genrekit)")
        cmd.parser.add_option("-a", "--albums", action="store_true", help="one genre per album")
        cmd.parser.add_option("-m", "--mode", choices=["keep", "replace", "add"], help="keep, replace or add")
        cmd.parser.add_option(
            "-c", "--min-confidence", type="float", dest="min_confidence", help="leave out less probable genres"
        )
        cmd.parser.add_option("-f", "--force", action="store_true", help="predict items this model tagged again")
        cmd.parser.add_option("-s", "--styles", action="store_true", help="also set genrekit_styles")
        cmd.parser.add_option("-p", "--pretend", action="store_true", help="show what would change; change nothing")

        def run(lib, opts, args):
            self.config.set_args(
                {k: v for k, v in vars(opts).items() if v is not None and k not in ("albums", "pretend")}
            )
            write, per_album = ui.should_write(), opts.albums or self.config["per"].get() == "album"
            if per_album:
                changed = sum(self.tag_album(a, write=write, pretend=opts.pretend) for a in lib.albums(args))
            else:
                changed = self.tag_items(list(lib.items(args)), write=write, pretend=opts.pretend)
            self._log.info("genrekit: {} item(s) changed", changed)

        cmd.func = run
        return [cmd]

    def imported(self, session, task):
        """The import stage: tag what was imported. beets writes the tags of an autotagged import
        afterwards (when ``import.write`` is on); an import as-is it does not write, so we do."""
        write = ui.should_write() and not getattr(task, "apply", False)
        if task.is_album and self.config["per"].get() == "album":
            self.tag_album(task.album, write=write)
        else:
            self.tag_items(task.imported_items(), write=write)
