"""The musicnn port: the TensorFlow checkpoint reader, the converter's mapping, the shipped weights,
the front end, and the port against outputs of the stock TensorFlow musicnn 0.1.0.

``tests/data/musicnn_reference.npz`` was written by ``scripts/musicnn_reference.py`` in a throwaway
tensorflow environment; the test recomputes the same input patches with that script's own
numpy/librosa code (it never imports tensorflow) and needs neither the wheel nor the network.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import GTZAN, script_module, slow_except

from genrekit.errors import GenrekitError
from genrekit.features.musicnn import log_compress, musicnn_mel_stream
from genrekit.models.musicnn import MSD_TAGS, MTT_TAGS, Musicnn, load_pretrained

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "data" / "musicnn_reference.npz"
PRETRAINED = ROOT / "src" / "genrekit" / "pretrained"
MODELS = {"MSD_musicnn": "msd", "MTT_musicnn": "mtt"}
TOL = 1e-4


tfc = script_module("tf_checkpoint")
ref = script_module("musicnn_reference")


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def models() -> dict[str, Musicnn]:
    return {stock: load_pretrained(key) for stock, key in MODELS.items()}


# ----------------------------------------------------------------------------- a tiny checkpoint


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _pb_varint(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _pb_bytes(field: int, value: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(value)) + value


def _block(entries: list[tuple[bytes, bytes]], restart_every: int = 2) -> bytes:
    out, restarts, prev = bytearray(), [], b""
    for i, (key, value) in enumerate(entries):
        shared = 0
        if i % restart_every:
            while shared < min(len(prev), len(key)) and prev[shared] == key[shared]:
                shared += 1
        else:
            restarts.append(len(out))
        out += _varint(shared) + _varint(len(key) - shared) + _varint(len(value)) + key[shared:] + value
        prev = key
    return bytes(out) + b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))


def _snappy_literal(raw: bytes) -> bytes:
    n = len(raw) - 1
    tag = bytes([n << 2]) if n < 60 else bytes([61 << 2]) + struct.pack("<H", n)
    return _varint(len(raw)) + tag + raw


def _table(blocks: list[list[tuple[bytes, bytes]]], *, snappy: tuple[int, ...] = ()) -> bytes:
    out = bytearray()

    def put(raw: bytes, compress: bool) -> tuple[int, int]:
        payload, kind = (_snappy_literal(raw), 1) if compress else (raw, 0)
        handle = (len(out), len(payload))
        out.extend(payload + bytes([kind]) + struct.pack("<I", tfc.masked_crc32c(payload + bytes([kind]))))
        return handle

    index = []
    for i, entries in enumerate(blocks):
        offset, size = put(_block(entries), i in snappy)
        index.append((entries[-1][0], _varint(offset) + _varint(size)))
    meta = put(_block([]), False)
    idx = put(_block(index, restart_every=1), False)
    footer = b"".join(_varint(v) for v in (*meta, *idx))
    return bytes(out) + footer.ljust(40, b"\0") + struct.pack("<Q", tfc.TABLE_MAGIC)


def _entry(dtype: int, shape: tuple[int, ...], shard: int, offset: int, data: bytes) -> bytes:
    dims = b"".join(_pb_bytes(2, _pb_varint(1, d)) for d in shape)
    crc = _varint(6 << 3 | 5) + struct.pack("<I", tfc.masked_crc32c(data))
    return (
        _pb_varint(1, dtype)
        + _pb_bytes(2, dims)
        + _pb_varint(3, shard)
        + _pb_varint(4, offset)
        + _pb_varint(5, len(data))
        + crc
    )


@pytest.fixture()
def tiny_checkpoint(tmp_path) -> tuple[Path, dict[str, np.ndarray]]:
    """A two-shard bundle: float32, float64, an Adam slot, an int64 scalar in shard 1, two data blocks
    (the second snappy-compressed), prefix-compressed keys with restart points."""
    tensors = {
        "conv/kernel": (np.arange(4, dtype=np.float64).reshape(2, 2, 1, 1) / 3, 2, 0),
        "dense/bias": (np.array([1.5, -2.0], np.float32), 1, 0),
        "dense/kernel": (np.arange(6, dtype=np.float32).reshape(3, 2) - 2.5, 1, 0),
        "dense/kernel/Adam": (np.full((3, 2), 0.25, np.float32), 1, 0),
        "global_step": (np.array(1234, np.int64), 9, 1),
    }
    shards, entries = [bytearray(), bytearray()], []
    for name, (value, dtype, shard) in tensors.items():
        data = value.astype(value.dtype.newbyteorder("<")).tobytes()
        entries.append((name.encode(), _entry(dtype, value.shape, shard, len(shards[shard]), data)))
        shards[shard] += data
    header = _pb_varint(1, 2) + _pb_bytes(3, _pb_varint(1, 1))  # 2 shards, little endian, version
    prefix = tmp_path / "model.ckpt-7"
    Path(f"{prefix}.index").write_bytes(_table([[(b"", header), *entries[:2]], entries[2:]], snappy=(1,)))
    for i, data in enumerate(shards):
        Path(f"{prefix}.data-{i:05d}-of-00002").write_bytes(bytes(data))
    return prefix, {k: v[0] for k, v in tensors.items()}


def test_crc32c_check_value():
    assert tfc.crc32c(b"123456789") == 0xE3069283


def test_snappy_literals_and_overlapping_copies():
    # "abcd", then a 1-byte-offset copy of 8 (overlapping itself), then a 2-byte-offset copy of 3
    stream = _varint(15) + bytes([3 << 2]) + b"abcd" + bytes([(8 - 4) << 2 | 1, 4]) + bytes([(3 - 1) << 2 | 2, 12, 0])
    assert tfc.snappy_decompress(stream) == b"abcdabcdabcdabc"
    with pytest.raises(tfc.CheckpointError, match="snappy"):
        tfc.snappy_decompress(_varint(9) + bytes([3 << 2]) + b"abcd" + bytes([(8 - 4) << 2 | 1, 5]))


def test_reader_reads_a_tiny_bundle_and_skips_optimizer_slots(tiny_checkpoint):
    prefix, expected = tiny_checkpoint
    got = tfc.read_checkpoint(prefix)
    assert list(got) == ["conv/kernel", "dense/bias", "dense/kernel"]
    every = tfc.read_checkpoint(prefix, include_optimizer=True)
    assert list(every) == sorted(expected)
    for name, value in expected.items():
        assert every[name].dtype == value.dtype and every[name].shape == value.shape
        np.testing.assert_array_equal(every[name], value)
    assert tfc.is_optimizer_slot("a/b/Adam_1") and tfc.is_optimizer_slot("beta2_power")
    assert not tfc.is_optimizer_slot("dense/kernel")


def test_reader_rejects_corrupt_files_clearly(tiny_checkpoint, tmp_path):
    prefix, _ = tiny_checkpoint
    shard = Path(f"{prefix}.data-00000-of-00002")
    data = bytearray(shard.read_bytes())
    data[5] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(tfc.CheckpointError, match="crc32c mismatch"):
        tfc.read_checkpoint(prefix)
    assert set(tfc.read_checkpoint(prefix, verify_crc=False)) == {"conv/kernel", "dense/bias", "dense/kernel"}
    shard.write_bytes(bytes(data[:10]))
    with pytest.raises(tfc.CheckpointError, match="bytes found"):
        tfc.read_checkpoint(prefix, verify_crc=False)
    index = Path(f"{prefix}.index")
    index.write_bytes(index.read_bytes()[:-1] + b"\0")
    with pytest.raises(tfc.CheckpointError, match="magic"):
        tfc.read_checkpoint(prefix)
    with pytest.raises(tfc.CheckpointError, match="no checkpoint index"):
        tfc.read_checkpoint(tmp_path / "nothing")


# ----------------------------------------------------------------------------- converter and weights


def _to_tensorflow(state: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """The inverse of the converter's mapping, written independently from the stock layouts."""
    conv = script_module("convert_musicnn")
    bn = {v: k for k, v in conv.BN_NAMES.items()}
    out = {}
    for tf_layer, module in conv.LAYERS.items():
        for key, value in state.items():
            owner, _, leaf = key.rpartition(".")
            if owner != module or leaf == "num_batches_tracked":
                continue
            v = value.numpy()
            if leaf in bn and ("bn" in module or leaf.startswith("running")):
                out[f"{tf_layer}/{bn[leaf]}"] = v
            elif leaf == "bias":
                out[f"{tf_layer}/bias"] = v
            elif v.ndim == 2:
                out[f"{tf_layer}/kernel"] = v.T
            elif v.ndim == 3:
                out[f"{tf_layer}/kernel"] = v.transpose(2, 1, 0)[:, :, None, :]
            else:
                out[f"{tf_layer}/kernel"] = v.transpose(3, 2, 1, 0)
    return out


def test_converter_mapping_round_trips_and_fails_loudly():
    conv = script_module("convert_musicnn")
    state = torch.load(PRETRAINED / "musicnn_msd.pt", weights_only=True)["state_dict"]
    tf_tensors = _to_tensorflow(state)
    assert len(tf_tensors) == 64 and tf_tensors["conv2d/kernel"].shape == (7, 38, 1, 204)
    back = conv.tf_to_torch(tf_tensors)
    assert list(back) == list(state)
    for key in state:
        assert torch.equal(back[key], state[key]), key
    with pytest.raises(ValueError, match="not filled.*dense_bn.running_var"):
        conv.tf_to_torch({k: v for k, v in tf_tensors.items() if k != "batch_normalization_10/moving_variance"})
    with pytest.raises(ValueError, match="no known musicnn layer"):
        conv.tf_to_torch({**tf_tensors, "conv2d_8/kernel": np.zeros(1, np.float32)})
    with pytest.raises(ValueError, match="expected"):
        conv.tf_to_torch({**tf_tensors, "dense/kernel": tf_tensors["dense/kernel"].T})


@pytest.mark.parametrize("key, tags", [("msd", MSD_TAGS), ("mtt", MTT_TAGS)])
def test_shipped_weights_load_plainly(key, tags):
    payload = torch.load(PRETRAINED / f"musicnn_{key}.pt", weights_only=True)
    assert payload["format_version"] == 1 and payload["tags"] == list(tags) and len(tags) == 50
    assert "ISC" in payload["source"] and "Music Technology Group" in payload["source"]
    values = {k: v for k, v in payload["state_dict"].items() if not k.endswith("num_batches_tracked")}
    assert len(values) == 64
    assert sum(v.numel() for v in values.values()) == 792_079
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in values.values())
    model = load_pretrained(key)
    assert not model.training and model.tags == tags
    assert sum(p.numel() for p in model.parameters()) == 787_159  # + 4,920 batch-norm statistics


def test_tag_lists_name_the_expected_genres():
    for genre in ("blues", "country", "Hip-Hop", "jazz", "metal", "heavy metal", "pop", "rock", "classic rock"):
        assert genre in MSD_TAGS
    assert not {"classical", "disco", "reggae"} & set(MSD_TAGS)
    assert "classical" in MTT_TAGS


def test_unknown_pretrained_name_lists_the_choices():
    assert load_pretrained("MTT_musicnn").tags == MTT_TAGS
    with pytest.raises(GenrekitError, match="unknown musicnn model 'vgg'.*msd, mtt"):
        load_pretrained("vgg")


def test_eval_shortcut_equals_the_plain_layer_order(models):
    """Eval mode max-pools the front-end maps before ReLU and batch norm; it must change nothing."""
    model = models["MTT_musicnn"]
    x = torch.from_numpy(np.random.default_rng(0).normal(2, 1, (3, 1, 96, 150)).astype(np.float32))
    with torch.no_grad():
        fast = model(x)
        for block in (*model.timbral, *model.temporal):
            block.training = True  # the plain path; batch norm itself stays in eval mode
        try:
            plain = model(x)
        finally:
            model.eval()
    assert fast.tags.shape == (3, 50) and fast.penultimate.shape == (3, 200) and fast.pooled.shape == (3, 1506)
    torch.testing.assert_close(fast.pooled, plain.pooled, rtol=0, atol=1e-6)
    torch.testing.assert_close(fast.tags, plain.tags, rtol=0, atol=1e-7)


# ----------------------------------------------------------------------------- front end and patches


def test_the_feature_kind_front_end_matches_the_stock_one_in_float32():
    for name, y in ref.synthetic_signals().items():
        stream = musicnn_mel_stream()
        power = np.concatenate([stream.push(y[: len(y) // 3]), stream.push(y[len(y) // 3 :]), stream.finish()], axis=1)
        ours = log_compress(power)
        stock = ref.stock_frontend(y).T
        assert ours.dtype == np.float32 and ours.shape == stock.shape == (96, 1 + y.size // 256), name
        assert np.isfinite(ours).all()
        assert np.abs(ours - stock).max() < 1e-4, name


# ----------------------------------------------------------------------------- port vs TensorFlow


def _compare(name: str, y: np.ndarray, reference, models) -> None:
    rep = ref.stock_frontend(y)
    np.testing.assert_allclose(
        rep.sum(axis=1, dtype=np.float64),
        reference[f"{name}/frontend_frame_sums"],
        rtol=1e-5,
        atol=1e-3,
        err_msg=f"{name}: the front end differs from the reference's (librosa/soxr/numpy versions?)",
    )
    x = torch.from_numpy(np.ascontiguousarray(ref.stock_patches(rep).transpose(0, 2, 1)[:, None]))
    for stock, model in models.items():
        with torch.no_grad():
            out = model(x)
        tags, pen = reference[f"{name}/{stock}/tags"], reference[f"{name}/{stock}/penultimate"]
        assert out.tags.shape == tags.shape and out.penultimate.shape == pen.shape
        assert np.abs(out.tags.numpy() - tags).max() < TOL, f"{name} {stock} tags"
        assert np.abs(out.penultimate.numpy() - pen).max() < TOL, f"{name} {stock} penultimate"
        # the pools reach ~70 after sums of ~4000 float32 products: compare them relatively
        for pool in ("mean_pool", "max_pool"):
            ours = getattr(out, pool)[0].numpy()
            np.testing.assert_allclose(ours, reference[f"{name}/{stock}/{pool}0"], rtol=5e-5, atol=TOL, err_msg=pool)
        np.testing.assert_array_equal(out.pooled[0, 1::2].numpy(), out.mean_pool[0].numpy())


@pytest.mark.parametrize("name", slow_except(["melody", "drums", "chirp"], "drums"))
def test_port_matches_stock_tensorflow_on_synthetic_signals(name, reference, models):
    assert name in reference["inputs"]
    _compare(name, ref.synthetic_signals()[name], reference, models)


@pytest.mark.slow
@pytest.mark.parametrize("clip", ref.GTZAN_CLIPS)
def test_port_matches_stock_tensorflow_on_gtzan(clip, reference, models):
    if not (GTZAN / "genres_original").is_dir():
        pytest.skip(f"GTZAN data not found at {GTZAN} (set GENREKIT_DATA)")
    y = ref.load_gtzan(GTZAN, clip)
    size, total = reference[f"{clip}/audio_sum"]
    assert y.size == size and abs(np.sum(y, dtype=np.float64) - total) < 1e-3, f"{clip} decodes differently"
    _compare(clip, y, reference, models)
    genre = clip.split(".")[0]
    top = MSD_TAGS[int(reference[f"{clip}/MSD_musicnn/tags"].mean(0).argmax())]
    assert genre == "classical" or top.lower() == genre, (clip, top)
