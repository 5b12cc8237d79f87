"""TensorFlow's random draws, reproduced in numpy: Philox4x32-10 and the few TensorFlow ops that use it.

Natekar & Sharma's PGDL code fixes its TensorFlow seeds, so its samples and augmentations are
determined by TensorFlow's generator. The ports reproduce them with this module (numpy only; TensorFlow
is needed only by the tests that compare with it):

* ``philox4x32`` is the counter-based generator of Salmon et al., "Parallel random numbers: as easy as
  1, 2, 3" (SC 2011), 10 rounds, as ``tensorflow/core/lib/random/philox_random.h`` runs it.
* ``PhiloxStream`` is TensorFlow's ``PhiloxRandom(seed, seed2)`` (key = seed, upper counter half =
  seed2), read 32 bits at a time (``SingleSampleAdapter``) or a 128-bit block at a time.
* ``op_seeds`` is ``random_seed.get_seed`` (global seed and op seed to the two kernel seeds).
* ``shuffle_draws`` is ``tf.data``'s ``shuffle(buffer, seed)`` over a stream repeated forever.
* ``eager_op_seeds`` are the op seeds eager ops get after ``tf.random.set_seed(s)`` when none is given.
* ``random_shuffle`` is ``tf.random.shuffle`` (the ``RandomShuffle`` kernel) of ``range(n)``.
* ``eager_uniforms`` are the values of eager ``tf.random.uniform([], low, high)`` calls under a global seed.
* ``stateful_uniform`` is the k-th call of a stateful ``tf.random.uniform`` kernel with fixed seeds.
"""

from __future__ import annotations

import random

import numpy as np

DEFAULT_GRAPH_SEED = 87654321  # random_seed.DEFAULT_GRAPH_SEED: the global seed when only an op seed is set
_MAXINT32 = 2**31 - 1
_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)  # Philox multipliers
_W0, _W1 = np.uint32(0x9E3779B9), np.uint32(0xBB67AE85)  # Weyl key increments
_LOW = np.uint64(0xFFFFFFFF)
_SHIFT = np.uint64(32)


def philox4x32(counter, key, rounds: int = 10) -> np.ndarray:
    """Philox4x32 of (..., 4) uint32 counters under (..., 2) uint32 keys (broadcast): (..., 4) uint32 outputs."""
    c = np.asarray(counter, dtype=np.uint32)
    k = np.asarray(key, dtype=np.uint32)
    c0, c1, c2, c3 = (c[..., i].astype(np.uint64) for i in range(4))
    k0, k1 = k[..., 0].copy(), k[..., 1].copy()
    with np.errstate(over="ignore"):
        for r in range(rounds):
            if r:
                k0, k1 = k0 + _W0, k1 + _W1
            p0, p1 = _M0 * c0, _M1 * c2  # exact 64-bit products of 32-bit words
            c0, c1, c2, c3 = (((p1 >> _SHIFT) ^ c1 ^ k0.astype(np.uint64)) & _LOW, p1 & _LOW,
                              ((p0 >> _SHIFT) ^ c3 ^ k1.astype(np.uint64)) & _LOW, p0 & _LOW)
    return np.stack([c0, c1, c2, c3], axis=-1).astype(np.uint32)


def _words(value: int) -> tuple[int, int]:
    value = int(value) & 0xFFFFFFFFFFFFFFFF
    return value & 0xFFFFFFFF, value >> 32


class PhiloxStream:
    """TensorFlow's ``random::PhiloxRandom(seed, seed2)``: key = the two 32-bit halves of ``seed``, counter =
    (block index as 64 bits, the two halves of ``seed2``)."""

    def __init__(self, seed: int, seed2: int):
        self.key = np.array(_words(seed), dtype=np.uint32)
        self.high = _words(seed2)
        self.block = 0  # the 64-bit low half of the counter
        self.used = 4  # 32-bit words of the current block already read (SingleSampleAdapter)
        self.current = None

    def blocks(self, index) -> np.ndarray:
        """The (n, 4) uint32 outputs of the blocks at absolute 64-bit counters ``index`` (no state change)."""
        index = np.asarray(index, dtype=np.uint64).reshape(-1)
        counter = np.empty((len(index), 4), dtype=np.uint32)
        counter[:, 0] = (index & _LOW).astype(np.uint32)
        counter[:, 1] = (index >> _SHIFT).astype(np.uint32)
        counter[:, 2], counter[:, 3] = self.high
        return philox4x32(counter, self.key)

    def uint32(self, count: int) -> np.ndarray:
        """The next ``count`` 32-bit outputs, one at a time as ``SingleSampleAdapter`` hands them out."""
        out = np.empty(count, dtype=np.uint32)
        taken = 0
        if self.used < 4 and count:
            take = min(4 - self.used, count)
            out[:take] = self.current[self.used : self.used + take]
            self.used += take
            taken = take
        rest = count - taken
        if rest:
            n = -(-rest // 4)
            words = self.blocks(self.block + np.arange(n, dtype=np.uint64))
            self.block += n
            out[taken:] = words.reshape(-1)[:rest]
            self.current, self.used = words[-1], 4 - (4 * n - rest)
        return out


def op_seeds(global_seed: int | None, op_seed: int | None) -> tuple[int, int]:
    """``random_seed.get_seed`` for a fixed op seed: (seed, seed2) handed to the kernel.

    With a global seed: (global, op); without: (DEFAULT_GRAPH_SEED, op); both taken modulo 2^31 - 1
    (``_truncate_seed``), and (0, 0) becomes (0, 2^31 - 1).
    """
    if op_seed is None:
        raise ValueError("op_seeds reproduces fixed op seeds only")
    seeds = (DEFAULT_GRAPH_SEED if global_seed is None else int(global_seed) % _MAXINT32, int(op_seed) % _MAXINT32)
    return (0, _MAXINT32) if seeds == (0, 0) else seeds


def uint32_to_float(bits) -> np.ndarray:
    """TensorFlow's float32 in [0, 1) of 32 random bits: the low 23 bits as a mantissa of [1, 2), minus 1."""
    bits = np.asarray(bits, dtype=np.uint32)
    return ((bits & np.uint32(0x7FFFFF)) | np.uint32(0x3F800000)).view(np.float32) - np.float32(1.0)


def scale_uniform(u, low: float, high: float) -> np.ndarray:
    """``tf.random.uniform``'s value in [low, high) for its [0, 1) float32 draw ``u``: u (high - low) + low in float32."""
    f = np.float32
    return np.asarray(u, dtype=f) * (f(high) - f(low)) + f(low)


def stateful_uniform(seed: int, seed2: int, calls, size: int = 1) -> np.ndarray:
    """The first 32-bit word of each scalar draw number ``calls`` of a stateful random op kernel, as uint32.

    A stateful random kernel (``RandomUniform``, ``RandomUniformInt``) seeded (seed, seed2) reserves
    256 blocks per output element at each call (``ReserveRandomOutputs(n, 256)``), so its k-th call of
    ``size`` elements starts at block 256 k size. Returns (len(calls), size) uint32; the float32 value is
    ``uint32_to_float``, an int32 in [lo, hi) is lo + bits % (hi - lo).
    """
    calls = np.asarray(calls, dtype=np.uint64).reshape(-1)
    stream = PhiloxStream(seed, seed2)
    per = -(-size // 4)
    starts = calls * np.uint64(256 * size)
    index = (starts[:, None] + np.arange(per, dtype=np.uint64)[None, :]).reshape(-1)
    return stream.blocks(index).reshape(len(calls), -1)[:, :size]


def iterator_seeds(seed: int, seed2: int, iteration: int = 0) -> tuple[int, int]:
    """The seeds of the ``iteration``-th iterator of a reshuffling ``tf.data`` shuffle seeded (seed, seed2).

    A shuffle that reshuffles each iteration (the default) owns a ``RandomSeedGenerator`` =
    ``PhiloxRandom(seed, seed2)`` and gives each new iterator its next two 32-bit outputs.
    """
    words = PhiloxStream(seed, seed2).uint32(2 * iteration + 2)
    return int(words[-2]), int(words[-1])


def buffer_shuffle(stream, rand, buffer_size: int) -> np.ndarray:
    """``tf.data``'s shuffle buffer over ``stream`` repeated forever, driven by the 32-bit draws ``rand``.

    One element per draw (``len(rand)`` in all). The iterator fills a ring buffer with the first
    ``buffer_size`` stream elements; for each element it emits the element at ring position
    r mod (elements held) counted from the ring's oldest, moves the oldest into the freed slot and
    appends the next stream element (``ShuffleDatasetBase::Iterator::GetNextInternal``).
    """
    stream = np.asarray(stream)
    if len(stream) == 0:
        raise ValueError("a shuffle needs a non-empty stream")
    if buffer_size < 1:
        raise ValueError(f"buffer_size must be >= 1, got {buffer_size}")
    rand = np.asarray(rand, dtype=np.int64)
    ring = stream[np.arange(buffer_size) % len(stream)].copy()
    out = np.empty(len(rand), dtype=stream.dtype)
    for i, r in enumerate(rand):  # before draw i the ring holds stream elements i .. i + buffer_size - 1
        start = i % buffer_size
        index = (start + r % buffer_size) % buffer_size
        out[i] = ring[index]
        ring[index] = ring[start]
        ring[start] = stream[(i + buffer_size) % len(stream)]
    return out


def shuffle_draws(stream, count: int, buffer_size: int, seed: int, seed2: int, iteration: int = 0) -> np.ndarray:
    """The first ``count`` elements of ``tf.data``'s ``repeat(-1).shuffle(buffer_size)`` over ``stream``.

    (seed, seed2): the dataset's seeds (``op_seeds``); ``iteration``: which iterator of the dataset
    (0: the first). ``buffer_shuffle`` driven by ``PhiloxStream(*iterator_seeds(...))``.
    """
    rand = PhiloxStream(*iterator_seeds(seed, seed2, iteration)).uint32(count)
    return buffer_shuffle(stream, rand, buffer_size)


def eager_op_seeds(global_seed: int, count: int) -> list[int]:
    """The op seeds of the first ``count`` eager ops that ask for one after ``tf.random.set_seed(global_seed)``.

    An eager op given no seed under a global seed takes ``context.internal_operation_seed()``: the next
    ``randint(0, 2^31 - 1)`` of Python's Mersenne Twister seeded with the global seed (``set_seed``
    reseeds it). Pass each to ``op_seeds(global_seed, op_seed)`` for the kernel's two seeds.
    """
    draws = random.Random(int(global_seed))
    return [draws.randint(0, _MAXINT32) for _ in range(count)]


def random_shuffle(n: int, seed: int, seed2: int) -> np.ndarray:
    """``tf.random.shuffle(range(n))`` as the first call of a ``RandomShuffle`` kernel seeded (seed, seed2).

    The kernel reserves n - 1 32-bit draws of ``PhiloxRandom(seed, seed2)`` and runs a forward
    Fisher-Yates shuffle: for i = 0 .. n - 2 it swaps element i with element i + (draw_i mod (n - i)).
    Inside a ``tf.function`` under the global seed s, the function's first random op without a seed
    gets op seed 0 (a per-graph counter), so its kernel seeds are ``op_seeds(s, 0)``.
    """
    if n >= 2**32:
        raise ValueError("random_shuffle reproduces the 32-bit path (n < 2^32) only")
    out = np.arange(n)
    if n < 2:
        return out
    draws = PhiloxStream(seed, seed2).uint32(n - 1).astype(np.int64)
    for i, r in enumerate(draws):
        j = i + int(r % (n - i))
        out[i], out[j] = out[j], out[i]
    return out


def eager_uniforms(global_seed: int, op_seeds_: list[int], low: float, high: float) -> np.ndarray:
    """float32 values of eager ``tf.random.uniform([], low, high)`` calls without a seed, one per op seed.

    Under the global seed each such call takes the next eager op seed (``eager_op_seeds``) and, being a
    new kernel, its first draw: ``stateful_uniform(*op_seeds(global_seed, op), [0])``, scaled in
    float32 as ``rnd * (high - low) + low``. (``tf.image.random_saturation`` draws its factor so.)
    """
    bits = np.array([stateful_uniform(*op_seeds(global_seed, op), [0])[0, 0] for op in op_seeds_], dtype=np.uint32)
    return scale_uniform(uint32_to_float(bits), low, high)
