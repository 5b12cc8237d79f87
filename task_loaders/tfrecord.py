"""TFRecord shards of ``tf.train.Example`` records holding serialized tensors, without TensorFlow.

A record is framed as: uint64 length (little endian), masked CRC-32C of those 8 bytes, the payload,
masked CRC-32C of the payload. A PGDL payload is an ``Example`` with two BYTES features, ``inputs``
and ``output``, each a serialized ``TensorProto`` (what ``tf.io.serialize_tensor`` writes). The
protobuf wire format is decoded by hand: varints and length-delimited fields are all it takes.

Reading streams record by record; every checksum is verified. ``read_split`` has a fast path for the
regular shards a writer produces (every record the same length and the same bytes outside the two
tensors' raw contents, in up to ``_MAX_LAYOUTS`` layouts, e.g. both orders of the Example's map
entries): the shard is memory-mapped, the payload CRCs are computed back to back over slices of it,
and the tensors are cut out of the records as strided numpy copies, with no per-record protobuf
decoding in Python (7x the streaming path's MB/s on a CIFAR-shaped split). Any irregular or corrupt
shard goes through the streaming path, which raises the precise error. Writing reproduces TensorFlow's
``TensorProto`` bytes exactly (the test-suite re-encodes every tensor of the fixture's shards and
compares byte for byte); TensorFlow writes the two map entries of an ``Example`` in no fixed order,
so whole records are compared by content.
"""

from __future__ import annotations

import mmap
import os
import re
import struct
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .crc32c import crc32c, masked_crc32c
from .errors import TaskFormatError

# TensorFlow's DataType enum (tensorflow/core/framework/types.proto), the members a PGDL shard can use.
DTYPES = {
    1: np.dtype("<f4"),
    2: np.dtype("<f8"),
    3: np.dtype("<i4"),
    4: np.dtype("u1"),
    5: np.dtype("<i2"),
    6: np.dtype("i1"),
    9: np.dtype("<i8"),
    10: np.dtype("?"),
    19: np.dtype("<f2"),
}
DTYPE_CODES = {dtype: code for code, dtype in DTYPES.items()}

_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")
_MASK_DELTA = np.uint64(0xA282EAD8)
_MAX_LAYOUTS = 8  # distinct record layouts one shard may have on the fast path


# ---------------------------------------------------------------------------------------------
# Record framing


def iter_records(path: str | os.PathLike, verify: bool = True) -> Iterator[bytes]:
    """Yield the payloads of one TFRecord file, checking both CRCs of every record."""
    path = Path(path)
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise TaskFormatError(f"{path}: cannot read shard ({exc.strerror or exc})") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        index = 0
        offset = 0
        while True:
            header = f.read(12)
            if not header:
                return
            if len(header) < 12:
                raise TaskFormatError(f"{path}: truncated record header at byte {offset} (record {index})")
            length, length_crc = _HEADER.unpack(header)
            if verify and masked_crc32c(header[:8]) != length_crc:
                raise TaskFormatError(
                    f"{path}: length checksum mismatch at byte {offset} (record {index}): corrupt shard"
                )
            # Checked against the file size before reading: a bad length must not become a huge allocation.
            body = f.read(length + 4) if offset + 12 + length + 4 <= size else b""
            if len(body) < length + 4:
                raise TaskFormatError(
                    f"{path}: truncated record {index} at byte {offset}: expected {length} payload bytes"
                )
            payload = body[:length]
            if verify and masked_crc32c(payload) != _FOOTER.unpack_from(body, length)[0]:
                raise TaskFormatError(
                    f"{path}: payload checksum mismatch in record {index} at byte {offset}: corrupt shard"
                )
            yield payload
            index += 1
            offset += 12 + length + 4


def write_records(path: str | os.PathLike, payloads: Iterable[bytes]) -> int:
    """Write payloads as a TFRecord file; returns the number of records written."""
    count = 0
    with open(path, "wb") as f:
        for payload in payloads:
            length = struct.pack("<Q", len(payload))
            f.write(length)
            f.write(struct.pack("<I", masked_crc32c(length)))
            f.write(payload)
            f.write(struct.pack("<I", masked_crc32c(payload)))
            count += 1
    return count


# ---------------------------------------------------------------------------------------------
# Protobuf wire format (only what Example and TensorProto use)


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(buf: bytes) -> Iterator[tuple[int, int, object]]:
    """Yield (field number, wire type, value) of a message: ints for varints, bytes otherwise."""
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > end:
                raise ValueError("truncated length-delimited field")
            value = buf[pos : pos + size]
            pos += size
        elif wire == 1:
            value = buf[pos : pos + 8]
            pos += 8
        elif wire == 5:
            value = buf[pos : pos + 4]
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field_bytes(number: int, data: bytes) -> bytes:
    return _encode_varint(number << 3 | 2) + _encode_varint(len(data)) + data


def _field_varint(number: int, value: int) -> bytes:
    return _encode_varint(number << 3) + _encode_varint(value)


# ---------------------------------------------------------------------------------------------
# TensorProto


def parse_tensor(buf: bytes) -> np.ndarray:
    """Decode a serialized ``TensorProto`` (dtype, shape and ``tensor_content`` or typed values)."""
    dtype_code = 0
    shape: list[int] = []
    content = None
    typed: list[bytes] = []
    for number, wire, value in _fields(buf):
        if number == 1 and wire == 0:
            dtype_code = value
        elif number == 2 and wire == 2:
            for n, w, dim in _fields(value):
                if n == 2 and w == 2:
                    size = 0
                    for dn, dw, dv in _fields(dim):
                        if dn == 1 and dw == 0:
                            size = dv
                    shape.append(size)
        elif number == 4 and wire == 2:
            content = value
        elif number in (5, 6, 7, 10) and wire == 2:  # packed float_val/double_val/int_val/int64_val
            typed.append(value)
    if dtype_code not in DTYPES:
        raise ValueError(f"unsupported tensor dtype code {dtype_code}")
    dtype = DTYPES[dtype_code]
    count = int(np.prod(shape)) if shape else 1
    if content is not None:
        array = np.frombuffer(content, dtype=dtype)
    elif typed:
        array = _typed_values(b"".join(typed), dtype, dtype_code)
        if array.size == 1 and count > 1:  # TensorFlow's splat for constant tensors
            array = np.full(count, array[0], dtype=dtype)
    else:
        array = np.zeros(count, dtype=dtype)
    if array.size != count:
        raise ValueError(f"tensor has {array.size} values for shape {shape}")
    return array.reshape(shape)


def _typed_values(packed: bytes, dtype: np.dtype, code: int) -> np.ndarray:
    if code == 1:
        return np.frombuffer(packed, dtype="<f4")
    if code == 2:
        return np.frombuffer(packed, dtype="<f8")
    values = []
    pos = 0
    while pos < len(packed):
        v, pos = _varint(packed, pos)
        if v >= 1 << 63:
            v -= 1 << 64
        values.append(v)
    return np.array(values).astype(dtype)


def serialize_tensor(array: np.ndarray) -> bytes:
    """Encode an array as ``tf.io.serialize_tensor`` does (``tensor_content``, shape always present)."""
    array = np.asarray(array)
    dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
    code = DTYPE_CODES.get(np.dtype(dtype).newbyteorder("<") if dtype.itemsize > 1 else dtype)
    if code is None:
        raise ValueError(f"dtype {array.dtype} has no TensorFlow equivalent here")
    dims = b"".join(_field_bytes(2, _field_varint(1, int(d)) if d else b"") for d in array.shape)
    content = np.ascontiguousarray(array, dtype=DTYPES[code]).tobytes()
    return _field_varint(1, code) + _field_bytes(2, dims) + _field_bytes(4, content)


# ---------------------------------------------------------------------------------------------
# Example


def parse_example(buf: bytes) -> dict[str, list]:
    """Decode a ``tf.train.Example`` into {feature name: list of values} (bytes, floats or ints)."""
    features: dict[str, list] = {}
    for number, wire, value in _fields(buf):
        if number != 1 or wire != 2:
            continue
        for n, w, entry in _fields(value):
            if n != 1 or w != 2:
                continue
            key = None
            feature = b""
            for en, ew, ev in _fields(entry):
                if en == 1 and ew == 2:
                    key = ev.decode("utf-8")
                elif en == 2 and ew == 2:
                    feature = ev
            if key is None:
                raise ValueError("feature map entry without a key")
            features[key] = _parse_feature(feature)
    return features


def _parse_feature(buf: bytes) -> list:
    for number, wire, value in _fields(buf):
        if wire != 2:
            continue
        if number == 1:  # BytesList
            return [v for n, w, v in _fields(value) if n == 1 and w == 2]
        if number == 2:  # FloatList (packed or not)
            out: list = []
            for n, w, v in _fields(value):
                if n == 1:
                    out.extend(np.frombuffer(v, "<f4").tolist())
            return out
        if number == 3:  # Int64List
            out = []
            for n, w, v in _fields(value):
                if n == 1 and w == 2:
                    pos = 0
                    while pos < len(v):
                        x, pos = _varint(v, pos)
                        out.append(x - (1 << 64) if x >= 1 << 63 else x)
                elif n == 1 and w == 0:
                    out.append(v - (1 << 64) if v >= 1 << 63 else v)
            return out
    return []


def serialize_example(features: dict[str, bytes]) -> bytes:
    """Encode an ``Example`` of single-value BYTES features (map entries in sorted key order)."""
    entries = b""
    for key in sorted(features):
        feature = _field_bytes(1, _field_bytes(1, features[key]))
        entries += _field_bytes(1, _field_bytes(1, key.encode("utf-8")) + _field_bytes(2, feature))
    return _field_bytes(1, entries)


# ---------------------------------------------------------------------------------------------
# PGDL splits


def _shard_key(path: Path):
    numbers = re.findall(r"\d+", path.name)
    return (int(numbers[-1]) if numbers else -1, path.name)


def shard_paths(directory: str | os.PathLike) -> list[Path]:
    """The ``*.tfrecord`` shards of a split folder in numeric order (shard_2 before shard_10)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise TaskFormatError(f"{directory}: split folder not found")
    shards = sorted((p for p in directory.iterdir() if p.suffix == ".tfrecord"), key=_shard_key)
    if not shards:
        raise TaskFormatError(f"{directory}: no *.tfrecord shards in split folder")
    return shards


def iter_examples(directory: str | os.PathLike, verify: bool = True) -> Iterator[tuple[np.ndarray, int]]:
    """Stream (input array, integer label) pairs of a split folder, shard by shard."""
    for shard in shard_paths(directory):
        for index, payload in enumerate(iter_records(shard, verify=verify)):
            yield _decode_pgdl_example(payload, shard, index)


def _decode_pgdl_example(payload: bytes, shard: Path, index: int) -> tuple[np.ndarray, int]:
    try:
        features = parse_example(payload)
        inputs = parse_tensor(features["inputs"][0])
        label = parse_tensor(features["output"][0])
    except KeyError as missing:
        raise TaskFormatError(f"{shard}: record {index} has no BYTES feature {missing}") from None
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise TaskFormatError(f"{shard}: record {index} is not a PGDL example: {exc}") from None
    if label.size != 1:
        raise TaskFormatError(f"{shard}: record {index} has a label of shape {label.shape}, expected a scalar")
    return inputs, int(label.reshape(()))


def read_split(directory: str | os.PathLike, verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Read a whole split folder: inputs stacked as float32 in their stored layout, labels int64."""
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    shape = None
    for shard in shard_paths(directory):
        fast = _read_regular_shard(shard, verify)
        if fast is not None and (shape is None or fast[0].shape[1:] == shape):
            x, y = fast
        else:  # irregular, corrupt or mismatched: the streaming path decodes it or names the error
            x, y = _read_shard_streaming(shard, verify, shape)
        if len(y) == 0:
            continue
        if shape is None:
            shape = x.shape[1:]
        xs.append(x)
        ys.append(y)
    if shape is None:
        raise TaskFormatError(f"{directory}: the split's shards hold no records")
    if len(xs) == 1:
        return xs[0], ys[0]
    return np.concatenate(xs), np.concatenate(ys)


def _read_shard_streaming(shard: Path, verify: bool, shape) -> tuple[np.ndarray, np.ndarray]:
    """One shard record by record (any valid layout); TaskFormatError naming the record otherwise."""
    chunks: list[bytes] = []
    labels: list[int] = []
    for index, payload in enumerate(iter_records(shard, verify=verify)):
        x, y = _decode_pgdl_example(payload, shard, index)
        if shape is None:
            shape = x.shape
        elif x.shape != shape:
            raise TaskFormatError(
                f"{shard}: record {index} has inputs of shape {x.shape}, the split's first has {shape}"
            )
        chunks.append(np.ascontiguousarray(x, dtype=np.float32).tobytes())
        labels.append(y)
    if not labels:
        return np.zeros((0,), np.float32), np.zeros(0, np.int64)
    x = np.frombuffer(b"".join(chunks), dtype=np.float32).reshape((len(labels),) + tuple(shape))
    return x.copy(), np.asarray(labels, dtype=np.int64)


# -- the fast path for regular shards ---------------------------------------------------------------


def _spans(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, start, end) of each field of ``buf[start:end]``: the value's bytes for
    a length-delimited field, the varint's bytes for a varint; ValueError for anything else."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value_start = pos
            _, pos = _varint(buf, pos)
            value_end = pos
        elif wire == 2:
            size, value_start = _varint(buf, pos)
            value_end = pos = value_start + size
        else:
            raise ValueError(f"wire type {wire}")
        if pos > end:
            raise ValueError("field runs past its message")
        yield number, wire, value_start, value_end


def _only(fields: list, number: int, wire: int) -> tuple[int, int]:
    if len(fields) != 1 or fields[0][:2] != (number, wire):
        raise ValueError("not the plain layout")
    return fields[0][2], fields[0][3]


def _tensor_layout(buf: bytes, start: int, end: int) -> tuple[int, int, int, tuple[int, ...]]:
    """(content start, content end, dtype code, shape) of a TensorProto holding ``tensor_content`` only."""
    seen: dict[int, tuple[int, int]] = {}
    for number, wire, s, e in _spans(buf, start, end):
        if (number, wire) not in ((1, 0), (2, 2), (4, 2)) or number in seen:
            raise ValueError("not the plain layout")
        seen[number] = (s, e)
    if set(seen) != {1, 2, 4}:
        raise ValueError("not the plain layout")
    code = _varint(buf, seen[1][0])[0]
    shape = []
    for number, wire, s, e in _spans(buf, *seen[2]):
        if (number, wire) != (2, 2):
            raise ValueError("not the plain layout")
        dim = list(_spans(buf, s, e))
        shape.append(_varint(buf, _only(dim, 1, 0)[0])[0] if dim else 0)
    content_start, content_end = seen[4]
    if code not in DTYPES or content_end - content_start != int(np.prod(shape)) * DTYPES[code].itemsize:
        raise ValueError("not the plain layout")
    return content_start, content_end, code, tuple(shape)


def _pgdl_layout(payload: bytes) -> dict[bytes, tuple[int, int, int, tuple[int, ...]]]:
    """Where an Example with exactly the BYTES features ``inputs`` and ``output`` (one serialized tensor
    each, ``tensor_content`` only) keeps its tensors: {key: (start, end, dtype code, shape)}."""
    found = {}
    for number, wire, s, e in _spans(payload, *_only(list(_spans(payload, 0, len(payload))), 1, 2)):
        if (number, wire) != (1, 2):
            raise ValueError("not the plain layout")
        entry = {n: (es, ee) for n, w, es, ee in _spans(payload, s, e) if w == 2}
        key = payload[slice(*entry[1])]
        if len(entry) != 2 or key in found or len(list(_spans(payload, s, e))) != 2:
            raise ValueError("not the plain layout")
        values = list(_spans(payload, *_only(list(_spans(payload, *entry[2])), 1, 2)))
        found[key] = _tensor_layout(payload, *_only(values, 1, 2))
    if set(found) != {b"inputs", b"output"}:
        raise ValueError("not the plain layout")
    return found


def _read_regular_shard(shard: Path, verify: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """A shard whose records share one length and one layout, decoded in bulk; None otherwise.

    Every record must have the first record's length-header bytes and the first record's payload
    bytes outside the two tensors' raw contents, so each parses exactly as the first does; then the
    tensors are one strided slice of the file seen as an (n, record size) byte matrix. Nothing here
    raises on a bad shard: None sends it to the streaming path, which reports the precise error.
    The file is memory-mapped (read in one go where it cannot be), so it is not copied whole.
    """
    try:
        with open(shard, "rb") as f:
            if os.fstat(f.fileno()).st_size < 16:
                return None
            try:
                data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError):
                return _decode_regular(f.read(), verify)
            with data:
                return _decode_regular(data, verify)
    except OSError:
        return None


def _decode_regular(data, verify: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """``_read_regular_shard`` on the shard's bytes (bytes or an mmap); returns copies only."""
    length, length_crc = _HEADER.unpack_from(data, 0)
    size = 12 + length + 4
    if length == 0 or len(data) % size:
        return None
    n = len(data) // size
    if verify and masked_crc32c(data[:8]) != length_crc:
        return None
    records = np.frombuffer(data, dtype=np.uint8).reshape(n, size)
    if not (records[1:, :12] == records[0, :12]).all():
        return None
    if verify:  # google-crc32c takes bytes only: slicing copies each payload once, at memcpy speed
        crcs = np.fromiter((crc32c(data[o : o + length]) for o in range(12, len(data), size)),
                           dtype=np.uint64, count=n)
        masked = (((crcs >> 15) | (crcs << 17)) + _MASK_DELTA) & 0xFFFFFFFF
        if not np.array_equal(masked, records[:, 12 + length :].copy().view("<u4").reshape(n)):
            return None
    x = y = x_type = y_type = None
    pending = np.ones(n, dtype=bool)
    # TensorFlow writes an Example's two map entries in either order, record by record: a layout per
    # order, each matched against every record at once.
    for _ in range(_MAX_LAYOUTS):
        first = int(np.argmax(pending))
        base = 12 + first * size
        try:
            layout = _pgdl_layout(data[base : base + length])
        except (ValueError, KeyError, IndexError):
            return None
        x_start, x_end, x_code, x_shape = layout[b"inputs"]
        y_start, y_end, y_code, y_shape = layout[b"output"]
        if x_type is None:
            if int(np.prod(y_shape)) != 1:
                return None
            x_type, y_type = (x_code, x_shape), (y_code, y_shape)
            x = np.empty((n, x_end - x_start), dtype=np.uint8)
            y = np.empty((n, y_end - y_start), dtype=np.uint8)
        elif (x_code, x_shape) != x_type or (y_code, y_shape) != y_type:
            return None
        # Bytes a record must share with this one to parse as it does: all but the two tensor contents.
        edges = sorted([(12 + x_start, 12 + x_end), (12 + y_start, 12 + y_end)])
        match = pending.copy()
        for lo, hi in [(12, edges[0][0]), (edges[0][1], edges[1][0]), (edges[1][1], 12 + length)]:
            if hi > lo:
                match &= (records[:, lo:hi] == records[first, lo:hi]).all(axis=1)
        if match.all():  # one layout throughout: plain slices (copies: never views of an mmap)
            x[:] = records[:, 12 + x_start : 12 + x_end]
            y[:] = records[:, 12 + y_start : 12 + y_end]
        else:
            rows = np.flatnonzero(match)
            x[rows] = records[rows, 12 + x_start : 12 + x_end]
            y[rows] = records[rows, 12 + y_start : 12 + y_end]
        pending &= ~match
        if not pending.any():
            break
    else:
        return None
    x = x.view(DTYPES[x_type[0]]).astype(np.float32, copy=False).reshape((n,) + x_type[1])
    return x, y.view(DTYPES[y_type[0]]).reshape(n).astype(np.int64)


def write_split(
    directory: str | os.PathLike,
    inputs: np.ndarray,
    labels: np.ndarray,
    records_per_shard: int = 10_000,
) -> list[Path]:
    """Write a split as ``shard_<i>.tfrecord`` files of float32 inputs and int32 scalar labels."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    inputs = np.asarray(inputs, dtype=np.float32)
    labels = np.asarray(labels)
    if len(inputs) != len(labels):
        raise ValueError(f"{len(inputs)} inputs but {len(labels)} labels")
    paths = []
    n_shards = max(1, -(-len(inputs) // records_per_shard))
    for s in range(n_shards):
        part = slice(s * records_per_shard, (s + 1) * records_per_shard)
        path = directory / f"shard_{s}.tfrecord"
        write_records(
            path,
            (
                serialize_example({"inputs": serialize_tensor(x), "output": serialize_tensor(np.int32(y))})
                for x, y in zip(inputs[part], labels[part])
            ),
        )
        paths.append(path)
    return paths
