"""TFRecord shards of ``tf.train.Example`` records holding serialized tensors, without TensorFlow.

A record is framed as: uint64 length (little endian), masked CRC-32C of those 8 bytes, the payload,
masked CRC-32C of the payload. A PGDL payload is an ``Example`` with two BYTES features, ``inputs``
and ``output``, each a serialized ``TensorProto`` (what ``tf.io.serialize_tensor`` writes). The
protobuf wire format is decoded by hand: varints and length-delimited fields are all it takes.

Reading streams record by record; every checksum is verified. Writing reproduces TensorFlow's
``TensorProto`` bytes exactly (the test-suite re-encodes every tensor of the fixture's shards and
compares byte for byte); TensorFlow writes the two map entries of an ``Example`` in no fixed order,
so whole records are compared by content.
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .crc32c import masked_crc32c
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
    chunks: list[bytes] = []
    labels: list[int] = []
    shape = None
    for shard in shard_paths(directory):
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
    if shape is None:
        raise TaskFormatError(f"{directory}: the split's shards hold no records")
    x = np.frombuffer(b"".join(chunks), dtype=np.float32).reshape((len(labels),) + tuple(shape))
    return x.copy(), np.asarray(labels, dtype=np.int64)


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
