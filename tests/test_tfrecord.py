"""TFRecord shards without TensorFlow: CRC-32C, record framing, TensorProto bytes, splits on disk."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from task_loaders import TaskFormatError, read_split, write_split
from task_loaders import tfrecord
from task_loaders.crc32c import crc32c, crc32c_reference, masked_crc32c


def bitwise_crc32c(data: bytes) -> int:
    """CRC-32C one bit at a time, straight from the definition (reflected polynomial 0x82F63B78)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def tfrecord_mask(crc: int) -> int:
    """TFRecord's masking, as its documentation states it."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def raw_records(path: Path) -> list[dict]:
    """Walk a shard by hand: offset, length, both stored CRCs and the payload of every record."""
    data = path.read_bytes()
    records = []
    pos = 0
    while pos < len(data):
        (length,) = struct.unpack_from("<Q", data, pos)
        (length_crc,) = struct.unpack_from("<I", data, pos + 8)
        payload = data[pos + 12 : pos + 12 + length]
        (payload_crc,) = struct.unpack_from("<I", data, pos + 12 + length)
        records.append(dict(offset=pos, length=length, header=data[pos : pos + 8], length_crc=length_crc,
                            payload=payload, payload_crc=payload_crc))
        pos += 12 + length + 4
    assert pos == len(data)
    return records


def fixture_shards(toy: Path) -> list[Path]:
    return sorted((toy / "dataset_1").glob("*/shard_*.tfrecord"))


# ---------------------------------------------------------------------------------------------
# CRC-32C


@pytest.mark.parametrize("fn", [crc32c, crc32c_reference], ids=["crc32c", "crc32c_reference"])
def test_crc32c_check_values(fn):
    # The CRC catalogue's check value, and the iSCSI test vectors of RFC 3720 (B.4).
    assert fn(b"123456789") == 0xE3069283
    assert fn(bytes(32)) == 0x8A9136AA
    assert fn(b"\xff" * 32) == 0x62A8AB43
    assert fn(bytes(range(32))) == 0x46DD794E
    assert fn(b"") == 0


def test_fast_and_reference_crc_agree_on_random_data():
    rng = np.random.default_rng(0)
    for size in [1, 2, 3, 7, 8, 15, 16, 63, 64, 65, 1000, 4097]:
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        assert crc32c(data) == crc32c_reference(data), size
    for size in [1, 5, 31]:
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        assert crc32c_reference(data) == bitwise_crc32c(data)


def test_masking_matches_the_tfrecord_definition():
    for data in [b"", b"\x00" * 8, b"123456789", struct.pack("<Q", 66)]:
        assert masked_crc32c(data) == tfrecord_mask(bitwise_crc32c(data))


def test_fixture_record_checksums(toy_task_path):
    count = 0
    for shard in fixture_shards(toy_task_path):
        for record in raw_records(shard):
            assert tfrecord_mask(bitwise_crc32c(record["header"])) == record["length_crc"]
            assert masked_crc32c(record["header"]) == record["length_crc"]
            assert masked_crc32c(record["payload"]) == record["payload_crc"]
            count += 1
    assert count == 300


# ---------------------------------------------------------------------------------------------
# Reading the fixture


def test_fixture_splits(toy_task_path):
    x, y = read_split(toy_task_path / "dataset_1" / "train")
    assert x.shape == (200, 3) and x.dtype == np.float32
    assert y.shape == (200,) and y.dtype == np.int64
    assert set(y.tolist()) == {0, 1}
    xt, yt = read_split(toy_task_path / "dataset_1" / "test")
    assert xt.shape == (100, 3) and xt.dtype == np.float32
    assert set(yt.tolist()) == {0, 1}

    # The first training example decoded by hand: a 12-byte tensor_content (field 4) of 3 float32s,
    # and an int32 label of 4 bytes, at the ends of their serialized TensorProtos.
    first = raw_records(toy_task_path / "dataset_1" / "train" / "shard_0.tfrecord")[0]["payload"]
    content = first[first.index(b'"\x0c') + 2 :][:12]
    np.testing.assert_array_equal(x[0], np.frombuffer(content, "<f4"))
    assert y[0] == struct.unpack("<i", first[-4:])[0]


def test_fixture_shards_stream_in_numeric_order(toy_task_path):
    train = toy_task_path / "dataset_1" / "train"
    assert [p.name for p in tfrecord.shard_paths(train)] == [f"shard_{i}.tfrecord" for i in range(3)]
    x, y = read_split(train)
    streamed = list(tfrecord.iter_examples(train))
    assert len(streamed) == 200
    np.testing.assert_array_equal(np.stack([s[0] for s in streamed]), x)
    assert [s[1] for s in streamed] == y.tolist()


def test_every_fixture_tensor_reencodes_byte_identically(toy_task_path):
    count = 0
    for shard in fixture_shards(toy_task_path):
        for record in raw_records(shard):
            features = tfrecord.parse_example(record["payload"])
            assert sorted(features) == ["inputs", "output"]
            for key in ("inputs", "output"):
                (stored,) = features[key]
                array = tfrecord.parse_tensor(stored)
                assert tfrecord.serialize_tensor(array) == stored, (shard, key)
                count += 1
            assert tfrecord.parse_tensor(features["inputs"][0]).dtype == np.float32
            label = tfrecord.parse_tensor(features["output"][0])
            assert label.dtype == np.int32 and label.shape == ()
    assert count == 600


def _map_entries(payload: bytes) -> list[bytes]:
    (features,) = [v for n, _, v in tfrecord._fields(payload) if n == 1]
    return sorted(v for n, _, v in tfrecord._fields(features) if n == 1)


def test_every_fixture_example_reencodes_to_the_same_entries(toy_task_path):
    # TensorFlow writes the two map entries in no fixed order; each entry's bytes must match.
    for shard in fixture_shards(toy_task_path):
        for record in raw_records(shard):
            features = tfrecord.parse_example(record["payload"])
            again = tfrecord.serialize_example({k: v[0] for k, v in features.items()})
            assert len(again) == len(record["payload"])
            assert _map_entries(again) == _map_entries(record["payload"])


# ---------------------------------------------------------------------------------------------
# Writing


def _bits(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)


def test_images_round_trip_across_many_shards(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((25, 4, 5, 3)).astype(np.float32)
    # Values a lossy path would change: signed zero, infinities, NaN, subnormals, extremes.
    x[0, 0, 0, :] = [-0.0, np.inf, -np.inf]
    x[1, 0, 0, :] = [np.nan, 1e-45, -3.4028235e38]
    y = rng.integers(0, 10, 25)
    y[2], y[3] = -1, 2**31 - 1

    paths = write_split(tmp_path / "train", x, y, records_per_shard=2)
    assert [p.name for p in paths] == [f"shard_{i}.tfrecord" for i in range(13)]
    # Numeric shard order, not lexicographic: shard_2 before shard_10.
    names = [p.name for p in tfrecord.shard_paths(tmp_path / "train")]
    assert names == [f"shard_{i}.tfrecord" for i in range(13)]
    assert names.index("shard_2.tfrecord") < names.index("shard_10.tfrecord")

    x2, y2 = read_split(tmp_path / "train")
    assert x2.shape == x.shape and x2.dtype == np.float32
    np.testing.assert_array_equal(_bits(x2), _bits(x))
    assert y2.dtype == np.int64
    assert y2.tolist() == y.tolist()
    # Every shard holds records_per_shard records (the last the remainder).
    assert [len(raw_records(p)) for p in paths] == [2] * 12 + [1]


def test_vectors_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((7, 11)).astype(np.float32)
    y = rng.integers(0, 3, 7)
    write_split(tmp_path / "test", x, y)
    x2, y2 = read_split(tmp_path / "test")
    np.testing.assert_array_equal(_bits(x2), _bits(x))
    assert y2.tolist() == y.tolist()
    # What was written is what TensorFlow would have written for each tensor.
    (shard,) = tfrecord.shard_paths(tmp_path / "test")
    first = tfrecord.parse_example(raw_records(shard)[0]["payload"])
    assert first["inputs"][0] == (
        b"\x08\x01"  # dtype DT_FLOAT
        + b"\x12\x04\x12\x02\x08\x0b"  # shape [11]
        + b"\x22\x2c" + x[0].astype("<f4").tobytes()  # tensor_content, 44 bytes
    )
    assert first["output"][0] == b"\x08\x03\x12\x00\x22\x04" + struct.pack("<i", int(y[0]))


def test_serialize_tensor_shapes_and_dtypes():
    for array in [np.zeros((0, 3), np.float32), np.arange(6, dtype=np.int64).reshape(2, 3),
                  np.array([1, 2], np.uint8), np.array(2.5, np.float64)]:
        again = tfrecord.parse_tensor(tfrecord.serialize_tensor(array))
        assert again.dtype == array.dtype and again.shape == array.shape
        np.testing.assert_array_equal(again, array)
    with pytest.raises(ValueError):
        tfrecord.serialize_tensor(np.array(["a"]))


# ---------------------------------------------------------------------------------------------
# Damaged shards


@pytest.fixture
def written_split(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((12, 2, 2, 1)).astype(np.float32)
    write_split(tmp_path / "train", x, np.arange(12) % 2, records_per_shard=6)
    return tmp_path / "train"


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_flipped_payload_byte(written_split):
    shard = written_split / "shard_1.tfrecord"
    record = raw_records(shard)[4]
    _flip(shard, record["offset"] + 12 + record["length"] // 2)
    with pytest.raises(TaskFormatError) as info:
        read_split(written_split)
    message = str(info.value)
    assert str(shard) in message and "record 4" in message and "checksum" in message
    # Without verification the same bytes are read (and here, decoded) without complaint.
    x, _ = read_split(written_split, verify=False)
    assert x.shape == (12, 2, 2, 1)


def test_flipped_length_byte(written_split):
    shard = written_split / "shard_0.tfrecord"
    record = raw_records(shard)[3]
    _flip(shard, record["offset"])
    with pytest.raises(TaskFormatError) as info:
        read_split(written_split)
    message = str(info.value)
    assert str(shard) in message and "record 3" in message and "length checksum" in message


def test_flipped_payload_checksum_byte(written_split):
    shard = written_split / "shard_0.tfrecord"
    record = raw_records(shard)[5]
    _flip(shard, record["offset"] + 12 + record["length"])
    with pytest.raises(TaskFormatError, match="record 5"):
        read_split(written_split)


def test_flipped_byte_in_the_fixture(toy_task_copy):
    shard = toy_task_copy / "dataset_1" / "train" / "shard_2.tfrecord"
    record = raw_records(shard)[40]
    _flip(shard, record["offset"] + 12 + 30)
    with pytest.raises(TaskFormatError) as info:
        read_split(shard.parent)
    assert str(shard) in str(info.value) and "record 40" in str(info.value)


@pytest.mark.parametrize("where", ["payload", "header"])
def test_truncated_shard(written_split, where):
    shard = written_split / "shard_1.tfrecord"
    record = raw_records(shard)[2]
    cut = record["offset"] + (12 + 5 if where == "payload" else 5)
    shard.write_bytes(shard.read_bytes()[:cut])
    with pytest.raises(TaskFormatError) as info:
        read_split(written_split)
    message = str(info.value)
    assert str(shard) in message and "truncated" in message and "record 2" in message


def test_truncated_final_checksum(written_split):
    shard = written_split / "shard_1.tfrecord"
    shard.write_bytes(shard.read_bytes()[:-2])
    with pytest.raises(TaskFormatError, match="truncated record 5"):
        read_split(written_split)


def test_length_beyond_end_of_file_is_refused_before_reading(tmp_path):
    # A length with a valid checksum but far larger than the file must not be allocated.
    split = tmp_path / "train"
    split.mkdir()
    length = struct.pack("<Q", 1 << 62)
    (split / "shard_0.tfrecord").write_bytes(length + struct.pack("<I", masked_crc32c(length)) + b"abc")
    with pytest.raises(TaskFormatError, match="truncated record 0"):
        read_split(split)


def test_empty_or_missing_split(tmp_path):
    with pytest.raises(TaskFormatError, match="split folder not found"):
        read_split(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TaskFormatError, match="no \\*.tfrecord shards"):
        read_split(tmp_path / "empty")
    (tmp_path / "empty" / "shard_0.tfrecord").write_bytes(b"")
    with pytest.raises(TaskFormatError, match="hold no records"):
        read_split(tmp_path / "empty")


def test_payload_that_is_not_an_example(tmp_path):
    split = tmp_path / "train"
    split.mkdir()
    tfrecord.write_records(split / "shard_0.tfrecord", [b"\x0a\x05abc"])  # a field longer than the message
    with pytest.raises(TaskFormatError, match="record 0 is not a PGDL example"):
        read_split(split)
    only_inputs = tfrecord.serialize_example({"inputs": tfrecord.serialize_tensor(np.zeros(2, np.float32))})
    tfrecord.write_records(split / "shard_0.tfrecord", [only_inputs])
    with pytest.raises(TaskFormatError, match="no BYTES feature 'output'"):
        read_split(split)


def test_unreadable_shard(tmp_path):
    split = tmp_path / "train"
    (split / "shard_0.tfrecord").mkdir(parents=True)  # open() fails, as for a file without read permission
    with pytest.raises(TaskFormatError, match="shard_0.tfrecord: cannot read shard"):
        read_split(split)
