"""TFRecord reading: our ``read_split`` versus TensorFlow's ``tf.data`` reader on one synthetic PGDL split.

    python -m scripts.perf.tfrecord [--mb 64] [--repeat 3] [--json out.json]

A CIFAR-shaped split (float32 32x32x3 inputs, int32 scalar labels, in shards of 2,000 records) of
about ``--mb`` megabytes is written to a temporary folder with ``write_split`` (the PGDL record
layout: ``tf.train.Example`` with BYTES features ``inputs`` and ``output``, each a serialized
``TensorProto``), then read back to numpy arrays, best of ``--repeat`` each, in this process:

* ours: ``read_split`` (every CRC checked, inputs float32 (N, 32, 32, 3), labels int64 (N,));
* ours, streaming: the record-by-record path ``read_split`` used before its bulk fast path (it is
  still what reads an irregular or corrupt shard);
* TensorFlow, official: ``tf.data.TFRecordDataset(shards).map(parse)`` iterated example by example,
  as the PGDL ingestion program fed submissions, where ``parse`` is ``tf.io.parse_single_example``
  of the two BYTES features and ``tf.io.parse_tensor`` of each; the examples are stacked to arrays;
* TensorFlow, tuned: the same ``parse`` with ``num_parallel_calls=AUTOTUNE``, batched by 1,024.

MB/s is the shards' bytes on disk (10^6 bytes per MB) over the seconds. The ratio compares ours with
the faster TensorFlow variant; all four must return the same arrays. Without TensorFlow only our
side is timed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from task_loaders import read_split, write_split
from task_loaders import tfrecord as _tfrecord

RECORD_SHAPE = (32, 32, 3)


def make_split(directory: Path, megabytes: float, records_per_shard: int = 2000, seed: int = 0):
    """Write about ``megabytes`` MB of CIFAR-shaped records; returns (inputs, labels, bytes on disk)."""
    per_record = int(np.prod(RECORD_SHAPE)) * 4 + 80  # tensor bytes plus the Example and framing around them
    n = max(1, int(megabytes * 1e6 / per_record))
    rng = np.random.default_rng(seed)
    x = rng.random((n,) + RECORD_SHAPE, dtype=np.float32)
    y = rng.integers(0, 10, n).astype(np.int32)
    paths = write_split(directory, x, y, records_per_shard=records_per_shard)
    return x, y, sum(p.stat().st_size for p in paths)


def best_of(fn, repeat: int):
    """(best seconds, last result) of ``repeat`` calls."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def read_streaming(directory: Path):
    """The record-by-record reader (``read_split`` before its fast path), shard by shard."""
    parts = [_tfrecord._read_shard_streaming(shard, True, None) for shard in _tfrecord.shard_paths(directory)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def import_tensorflow():
    """TensorFlow, quietly imported, or None (with the reason) when it cannot be."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except Exception as exc:  # ImportError, or a broken install
        return None, f"{type(exc).__name__}: {exc}"
    return tf, None


def tensorflow_readers(tf, shards: list[str]):
    """{variant: zero-argument function returning (inputs, labels) numpy arrays} for TensorFlow."""
    features = {"inputs": tf.io.FixedLenFeature([], tf.string), "output": tf.io.FixedLenFeature([], tf.string)}

    def parse(record):
        example = tf.io.parse_single_example(record, features)
        return tf.io.parse_tensor(example["inputs"], tf.float32), tf.io.parse_tensor(example["output"], tf.int32)

    def official():
        pairs = list(tf.data.TFRecordDataset(shards).map(parse).as_numpy_iterator())
        return np.stack([p[0] for p in pairs]), np.array([p[1] for p in pairs])

    def tuned():
        dataset = tf.data.TFRecordDataset(shards).map(parse, num_parallel_calls=tf.data.AUTOTUNE).batch(1024)
        batches = list(dataset.as_numpy_iterator())
        return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])

    return {"official": official, "tuned": tuned}


def run(megabytes: float = 64.0, repeat: int = 3, records_per_shard: int = 2000, use_tf: bool = True) -> dict:
    with tempfile.TemporaryDirectory(prefix="pgdl-perf-tfrecord-") as tmp:
        directory = Path(tmp) / "train"
        x, y, size = make_split(directory, megabytes, records_per_shard)
        mb = size / 1e6
        shards = [str(p) for p in _tfrecord.shard_paths(directory)]
        ours_s, ours = best_of(lambda: read_split(directory), repeat)
        streaming_s, streaming = best_of(lambda: read_streaming(directory), repeat)
        identical = all(np.array_equal(a, b) for a, b in ((ours[0], x), (ours[1], y), (streaming[0], x),
                                                            (streaming[1], y)))
        out = {
            "records": len(x), "shards": len(shards), "record_shape": list(RECORD_SHAPE), "megabytes": mb,
            "repeat": repeat, "fast_crc32c": _crc_is_fast(),
            "ours_s": ours_s, "ours_mb_s": mb / ours_s,
            "ours_streaming_s": streaming_s, "ours_streaming_mb_s": mb / streaming_s,
            "fast_over_streaming": streaming_s / ours_s,
            "tensorflow": None, "tensorflow_missing": None, "ratio": None,
        }
        tf, why = import_tensorflow() if use_tf else (None, "not requested")
        if tf is None:
            out["tensorflow_missing"] = why
        else:
            variants = {}
            for name, read in tensorflow_readers(tf, shards).items():
                seconds, (tx, ty) = best_of(read, repeat)
                identical = identical and np.array_equal(tx, x) and np.array_equal(ty, y)
                variants[name] = {"s": seconds, "mb_s": mb / seconds}
            best = max(variants, key=lambda k: variants[k]["mb_s"])
            out["tensorflow"] = {"version": tf.__version__, "variants": variants, "best_variant": best,
                                 "best_mb_s": variants[best]["mb_s"]}
            out["ratio"] = out["ours_mb_s"] / variants[best]["mb_s"]
            out["ratio_official"] = out["ours_mb_s"] / variants["official"]["mb_s"]
        out["identical"] = bool(identical)
    return out


def _crc_is_fast() -> bool:
    from task_loaders.crc32c import FAST

    return bool(FAST)


def summary(r: dict) -> str:
    line = (f"TFRecord reading, {r['megabytes']:.1f} MB ({r['records']} records of {r['record_shape']} in "
            f"{r['shards']} shards): ours {r['ours_mb_s']:.0f} MB/s (streaming path {r['ours_streaming_mb_s']:.0f} "
            f"MB/s)")
    tf = r["tensorflow"]
    if tf is None:
        return line + f"; TensorFlow not timed ({r['tensorflow_missing']})"
    v = tf["variants"]
    return line + (f"; TensorFlow {tf['version']} official {v['official']['mb_s']:.0f} MB/s, tuned "
                   f"{v['tuned']['mb_s']:.0f} MB/s; ours / best TensorFlow = {r['ratio']:.2f}x (target >= 1)"
                   + ("" if r["identical"] else "; ARRAYS DIFFER"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=64.0, help="size of the synthetic split (default 64 MB)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-tf", action="store_true", help="time our reader only")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    r = run(args.mb, args.repeat, use_tf=not args.no_tf)
    print(summary(r))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))
    return 0 if r["identical"] and (r["ratio"] is None or r["ratio"] >= 1) else 1


if __name__ == "__main__":
    sys.exit(main())
