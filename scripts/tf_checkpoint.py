"""Read TensorFlow (V2 "bundle") checkpoints with the standard library and numpy only.

A checkpoint ``PREFIX`` is ``PREFIX.index`` plus ``PREFIX.data-NNNNN-of-MMMMM`` shards. The index is
a LevelDB-style sorted table: data blocks of prefix-compressed ``key -> value`` entries with restart
points, an index block of block handles, and a 48-byte footer (metaindex and index handles as
varints, then a magic number). Each block is followed by a 5-byte trailer: a compression byte
(0 none, 1 snappy) and the masked crc32c of the block plus that byte. Every key is a tensor name
whose value is a ``BundleEntryProto`` (dtype, shape, shard, offset, size, crc32c); the empty key
holds the ``BundleHeaderProto`` (number of shards, endianness). The shards hold raw tensor bytes.

This is used by ``scripts/convert_musicnn.py`` so that genrekit never needs tensorflow.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5

# tensorflow/core/framework/types.proto DataType -> numpy little-endian dtype
DTYPES = {
    1: "<f4",
    2: "<f8",
    3: "<i4",
    4: "u1",
    5: "<i2",
    6: "i1",
    9: "<i8",
    10: "?",
    17: "<u2",
    19: "<f2",
    22: "<u4",
    23: "<u8",
}
# slots and counters that optimizers add next to the model variables
_OPTIMIZER_LEAF = re.compile(r"^(Adam|Adam_\d+|Momentum|RMSProp(_\d+)?|Adagrad|Adadelta(_\d+)?|Ftrl(_\d+)?)$")
_OPTIMIZER_NAMES = frozenset({"global_step", "beta1_power", "beta2_power"})


class CheckpointError(ValueError):
    """The checkpoint files are missing, malformed or use a feature this reader does not support."""


# ----------------------------------------------------------------------------- crc32c (Castagnoli)


def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    """The CRC-32C (Castagnoli) of ``data``; pure Python, about 10 MB/s."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """LevelDB/TensorFlow's masked CRC-32C (a CRC stored next to CRC'd data must not be CRC'd plainly)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# ----------------------------------------------------------------------------- wire formats


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise CheckpointError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise CheckpointError("varint longer than 10 bytes")


def _proto_fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """``(field number, value)`` of a protobuf message: ints for varint/fixed, bytes for length-delimited."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = bytes(buf[pos : pos + n]), pos + n
        elif wire == 5:
            value, pos = int.from_bytes(buf[pos : pos + 4], "little"), pos + 4
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wire}")
        if pos > len(buf):
            raise CheckpointError("truncated protobuf message")
        yield field, value


def snappy_decompress(data: bytes) -> bytes:
    """Decode a raw snappy block (the compression LevelDB tables may use)."""
    size, pos = _varint(data, 0)
    out = bytearray()
    while pos < len(data):
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal
            n = tag >> 2
            if n >= 60:
                extra = n - 59
                n = int.from_bytes(data[pos : pos + extra], "little")
                pos += extra
            n += 1
            out += data[pos : pos + n]
            pos += n
            continue
        if kind == 1:
            length, offset = ((tag >> 2) & 7) + 4, ((tag >> 5) << 8) | data[pos]
            pos += 1
        elif kind == 2:
            length, offset = (tag >> 2) + 1, int.from_bytes(data[pos : pos + 2], "little")
            pos += 2
        else:
            length, offset = (tag >> 2) + 1, int.from_bytes(data[pos : pos + 4], "little")
            pos += 4
        if offset == 0 or offset > len(out):
            raise CheckpointError("corrupt snappy block: copy before the start")
        for _ in range(length):  # byte by byte: a copy may overlap its own output
            out.append(out[-offset])
    if len(out) != size:
        raise CheckpointError(f"corrupt snappy block: {len(out)} bytes decoded, {size} announced")
    return bytes(out)


# ----------------------------------------------------------------------------- sorted table


def _read_block(table: bytes, handle: bytes | tuple[int, int], *, verify_crc: bool) -> bytes:
    if isinstance(handle, bytes):
        offset, pos = _varint(handle, 0)
        size, _ = _varint(handle, pos)
    else:
        offset, size = handle
    end = offset + size
    if end + BLOCK_TRAILER_SIZE > len(table):
        raise CheckpointError(f"block handle ({offset}, {size}) points past the end of the index file")
    block, kind = table[offset:end], table[end]
    if verify_crc:
        stored = int.from_bytes(table[end + 1 : end + 5], "little")
        if masked_crc32c(block + bytes([kind])) != stored:
            raise CheckpointError(f"index block at offset {offset}: crc32c mismatch")
    if kind == 0:
        return block
    if kind == 1:
        return snappy_decompress(block)
    raise CheckpointError(f"index block at offset {offset}: unknown compression type {kind}")


def _block_entries(block: bytes) -> Iterator[tuple[bytes, bytes]]:
    if len(block) < 4:
        raise CheckpointError("index block shorter than its restart count")
    n_restarts = int.from_bytes(block[-4:], "little")
    limit = len(block) - 4 - 4 * n_restarts
    if limit < 0:
        raise CheckpointError("index block: restart array larger than the block")
    key, pos = b"", 0
    while pos < limit:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        n_value, pos = _varint(block, pos)
        if shared > len(key) or pos + unshared + n_value > limit:
            raise CheckpointError("index block: corrupt entry")
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        yield key, block[pos : pos + n_value]
        pos += n_value


def read_table(table: bytes, *, verify_crc: bool = True) -> dict[bytes, bytes]:
    """All ``key -> value`` pairs of a LevelDB-style sorted table held in memory."""
    if len(table) < FOOTER_SIZE:
        raise CheckpointError("index file shorter than a table footer")
    footer = table[-FOOTER_SIZE:]
    if int.from_bytes(footer[-8:], "little") != TABLE_MAGIC:
        raise CheckpointError("not a TensorFlow checkpoint index (bad table magic number)")
    _, pos = _varint(footer, 0)  # metaindex offset
    _, pos = _varint(footer, pos)  # metaindex size (TF writes no meta blocks)
    index_offset, pos = _varint(footer, pos)
    index_size, _ = _varint(footer, pos)
    out: dict[bytes, bytes] = {}
    index = _read_block(table, (index_offset, index_size), verify_crc=verify_crc)
    for _, handle in _block_entries(index):
        for key, value in _block_entries(_read_block(table, handle, verify_crc=verify_crc)):
            out[key] = value
    return out


# ----------------------------------------------------------------------------- bundle


def _entry(name: str, value: bytes) -> dict:
    entry = {"dtype": 0, "shape": [], "shard_id": 0, "offset": 0, "size": 0, "crc32c": None, "sliced": False}
    for field, v in _proto_fields(value):
        if field == 1:
            entry["dtype"] = v
        elif field == 2:
            for f, dim in _proto_fields(v):
                if f == 2:
                    entry["shape"].append(next((s for g, s in _proto_fields(dim) if g == 1), 0))
                elif f == 3 and dim:
                    raise CheckpointError(f"tensor {name!r}: unknown rank")
        elif field == 3:
            entry["shard_id"] = v
        elif field == 4:
            entry["offset"] = v
        elif field == 5:
            entry["size"] = v
        elif field == 6:
            entry["crc32c"] = v
        elif field == 7:
            entry["sliced"] = True
    return entry


def is_optimizer_slot(name: str) -> bool:
    """True for optimizer state (``*/Adam``, ``*/Adam_1``, ``beta1_power``, ``global_step``...)."""
    return name in _OPTIMIZER_NAMES or bool(_OPTIMIZER_LEAF.match(name.rsplit("/", 1)[-1]))


def read_bundle(
    *,
    index: bytes,
    read_shard: Callable[[int, int], bytes],
    include_optimizer: bool = False,
    verify_crc: bool = True,
) -> dict[str, np.ndarray]:
    """Decode a checkpoint from the bytes of its index and a shard reader.

    Parameters
    ----------
    index : bytes
        The content of ``PREFIX.index``.
    read_shard : callable
        ``read_shard(shard_id, num_shards)`` returns the content of ``PREFIX.data-<id>-of-<num>``.
    include_optimizer : bool
        Also return optimizer slots and counters (see :func:`is_optimizer_slot`).
    verify_crc : bool
        Check the crc32c of every index block and every returned tensor.

    Returns
    -------
    dict of str to numpy.ndarray
        Tensors by variable name, in native byte order, sorted by name.
    """
    entries = read_table(index, verify_crc=verify_crc)
    if b"" not in entries:
        raise CheckpointError("checkpoint index has no bundle header (empty key)")
    header = dict(_proto_fields(entries.pop(b"")))
    num_shards = header.get(1, 1)
    if header.get(2, 0) != 0:
        raise CheckpointError("big-endian checkpoints are not supported")
    shards: dict[int, bytes] = {}
    out: dict[str, np.ndarray] = {}
    for raw_name, value in entries.items():
        name = raw_name.decode("utf-8")
        if not include_optimizer and is_optimizer_slot(name):
            continue
        e = _entry(name, value)
        if e["sliced"]:
            raise CheckpointError(f"tensor {name!r} is partitioned into slices; not supported")
        if e["dtype"] not in DTYPES:
            raise CheckpointError(f"tensor {name!r}: TensorFlow dtype {e['dtype']} is not supported")
        if not 0 <= e["shard_id"] < num_shards:
            raise CheckpointError(f"tensor {name!r}: shard {e['shard_id']} of {num_shards}")
        if e["shard_id"] not in shards:
            shards[e["shard_id"]] = read_shard(e["shard_id"], num_shards)
        data = shards[e["shard_id"]][e["offset"] : e["offset"] + e["size"]]
        dtype = np.dtype(DTYPES[e["dtype"]])
        n = int(np.prod(e["shape"], dtype=np.int64))
        if len(data) != e["size"] or e["size"] != n * dtype.itemsize:
            raise CheckpointError(
                f"tensor {name!r}: {len(data)} bytes found, shape {e['shape']} needs {n * dtype.itemsize}"
            )
        if verify_crc and e["crc32c"] is not None and masked_crc32c(data) != e["crc32c"]:
            raise CheckpointError(f"tensor {name!r}: crc32c mismatch (corrupt data shard)")
        out[name] = np.frombuffer(data, dtype=dtype).reshape(e["shape"]).astype(dtype.newbyteorder("="))
    return dict(sorted(out.items()))


def read_checkpoint(
    prefix: str | os.PathLike, *, include_optimizer: bool = False, verify_crc: bool = True
) -> dict[str, np.ndarray]:
    """Read the tensors of the checkpoint ``prefix`` (``prefix + '.index'`` and its data shards).

    Parameters
    ----------
    prefix : str or path-like
        The checkpoint prefix, e.g. ``'model.ckpt-1000'`` or ``'musicnn/MSD_musicnn/'``.
    include_optimizer : bool
        Also return optimizer slots (``*/Adam``, ``*/Adam_1``, ``beta1_power``...) and ``global_step``.
    verify_crc : bool
        Check the crc32c of every index block and every returned tensor.

    Returns
    -------
    dict of str to numpy.ndarray
        Tensors by variable name, sorted by name.

    Raises
    ------
    CheckpointError
        When a file is missing or malformed, or a tensor uses an unsupported feature.
    """
    prefix = os.fspath(prefix)
    index_path = Path(prefix + ".index")
    if not index_path.is_file():
        raise CheckpointError(f"no checkpoint index at {index_path}")

    def read_shard(shard: int, num_shards: int) -> bytes:
        path = Path(f"{prefix}.data-{shard:05d}-of-{num_shards:05d}")
        if not path.is_file():
            raise CheckpointError(f"missing checkpoint data shard {path}")
        return path.read_bytes()

    return read_bundle(
        index=index_path.read_bytes(),
        read_shard=read_shard,
        include_optimizer=include_optimizer,
        verify_crc=verify_crc,
    )


if __name__ == "__main__":  # python scripts/tf_checkpoint.py PREFIX: list the tensors
    import sys

    for k, v in read_checkpoint(sys.argv[1], include_optimizer="--all" in sys.argv).items():
        print(f"{k:60s} {v.dtype!s:8s} {v.shape}")
