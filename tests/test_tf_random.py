"""measures/stats/tf_random.py: Philox4x32-10 known answers, TensorFlow's seed rules and shuffle buffer by hand,
and element-by-element agreement with TensorFlow itself where it is installed."""

import importlib.util

import numpy as np
import pytest

from measures.stats.augmentations import ZOOM_SCALES, mixup_partners, natekar_draws
from measures.stats.tf_random import (DEFAULT_GRAPH_SEED, PhiloxStream, buffer_shuffle, eager_op_seeds, eager_uniforms,
                                     iterator_seeds,
                                     op_seeds, philox4x32, random_shuffle, shuffle_draws, stateful_uniform,
                                     uint32_to_float)

needs_tf = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs TensorFlow")


def test_philox4x32_10_known_answers():
    # Random123's kat_vectors for philox4x32 with 10 rounds (Salmon et al. 2011)
    cases = [([0, 0, 0, 0], [0, 0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
             ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
             ([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], [0xA4093822, 0x299F31D0],
              [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1])]
    for counter, key, expected in cases:
        assert philox4x32(counter, key).tolist() == expected
    # vectorized: a batch of counters gives each one's block
    batch = philox4x32([c for c, _, _ in cases], [k for _, k, _ in cases])
    assert batch.tolist() == [e for _, _, e in cases]


def test_philox_stream_counter_layout_and_single_samples():
    s = PhiloxStream(seed=(7 << 32) | 5, seed2=(9 << 32) | 3)  # key (5, 7), counter (block, 0, 3, 9)
    assert s.blocks([0, 2**32 + 1]).tolist() == [philox4x32([0, 0, 3, 9], [5, 7]).tolist(),
                                                 philox4x32([1, 1, 3, 9], [5, 7]).tolist()]
    # 32-bit words are handed out in order, across calls and block boundaries
    whole = PhiloxStream(5, 3).uint32(11)
    parts = PhiloxStream(5, 3)
    assert np.concatenate([parts.uint32(3), parts.uint32(0), parts.uint32(6), parts.uint32(2)]).tolist() == whole.tolist()
    assert whole[:8].tolist() == PhiloxStream(5, 3).blocks([0, 1]).reshape(-1).tolist()


def test_seed_rules_by_hand():
    assert op_seeds(None, 1) == (DEFAULT_GRAPH_SEED, 1) == (87654321, 1)
    assert op_seeds(0, 1) == (0, 1)
    assert op_seeds(0, 0) == (0, 2**31 - 1)  # (0, 0) would mean "unseeded" to the kernels
    assert op_seeds(2**31 + 4, 3) == (5, 3)  # seeds modulo 2^31 - 1
    # a reshuffling dataset's n-th iterator is seeded by words 2n, 2n + 1 of Philox(seed, seed2)
    words = PhiloxStream(3, 4).uint32(6)
    assert iterator_seeds(3, 4) == (words[0], words[1]) and iterator_seeds(3, 4, 2) == (words[4], words[5])


def test_random_shuffle_by_hand():
    w = PhiloxStream(4, 9).uint32(3).astype(int)  # n - 1 words for n = 4
    expected = [0, 1, 2, 3]
    for i in range(3):  # forward Fisher-Yates: swap i with i + w_i mod (4 - i)
        j = i + w[i] % (4 - i)
        expected[i], expected[j] = expected[j], expected[i]
    assert random_shuffle(4, 4, 9).tolist() == expected
    assert random_shuffle(1, 4, 9).tolist() == [0] and random_shuffle(0, 4, 9).tolist() == []
    assert sorted(random_shuffle(500, 1, 0).tolist()) == list(range(500))


def test_uint32_to_float_by_hand():
    bits = np.array([0, 0x7FFFFF, 0x800000, 0x400000, 0xFFFFFFFF], dtype=np.uint32)
    out = uint32_to_float(bits)
    assert out.dtype == np.float32
    assert out.tolist() == [0.0, 1 - 2.0**-23, 0.0, 0.5, 1 - 2.0**-23]  # the low 23 bits are the mantissa


def test_stateful_uniform_reserves_256_blocks_per_element():
    stream = PhiloxStream(11, 12)
    got = stateful_uniform(11, 12, [0, 1, 3])
    assert got[:, 0].tolist() == stream.blocks([0, 256, 768])[:, 0].tolist()
    wide = stateful_uniform(11, 12, [2], size=6)  # call 2 of 6 elements starts at block 2 * 256 * 6
    assert wide[0].tolist() == stream.blocks([3072, 3073]).reshape(-1)[:6].tolist()


def test_buffer_shuffle_by_hand():
    stream = np.array([10, 11, 12, 13])
    # buffer 3: ring [10, 11, 12]; r=1 -> 11, the oldest (10) moves to its slot, 13 appended: [13, 10, 12]
    # with oldest at slot 1; r=1 -> position 1 + 1 = slot 2 -> 12, the oldest (10) moves there, the
    # stream's next (10) appended at slot 1: [13, 10, 10], oldest at slot 2; r=5 -> 5 mod 3 = 2 -> slot 1 -> 10
    np.testing.assert_array_equal(buffer_shuffle(stream, [1, 1, 5], 3), [11, 12, 10])
    # r = 0 always takes the oldest: the stream in order, cycling
    np.testing.assert_array_equal(buffer_shuffle(stream, [0] * 6, 3), [10, 11, 12, 13, 10, 11])
    # a buffer larger than the stream holds repeats: the same element twice in a row
    np.testing.assert_array_equal(buffer_shuffle(stream, [0, 3], 6), [10, 10])
    # a buffer of 1 keeps the order whatever the draws
    np.testing.assert_array_equal(buffer_shuffle(stream, [7, 3, 9, 1, 2], 1), [10, 11, 12, 13, 10])
    # the first draws of a small buffer over a long stream come from its beginning
    assert shuffle_draws(np.arange(1000), 50, 100, 1, 2).max() < 150
    with pytest.raises(ValueError, match="non-empty"):
        buffer_shuffle([], [1], 3)


def test_mixup_partners_follow_numpys_legacy_choice():
    # the authors' batchMixupLabelwiseLinear: seed(2), sort by label, np.random.choice within each class block
    rng = np.random.default_rng(0)
    for trial in range(20):
        labels = rng.integers(0, 5, size=23).astype(np.int32)
        np.random.seed(2)
        order = np.argsort(labels)
        sorted_labels = labels[order]
        edges = np.concatenate([[0], np.cumsum([np.sum(sorted_labels == c) for c in range(sorted_labels.max() + 1)])])
        shuffled = []
        for a, b in zip(edges[:-1], edges[1:]):
            shuffled += list(np.random.choice(list(range(a, b)), replace=False, size=b - a))
        expected = np.empty(23, dtype=np.int64)
        expected[order] = order[np.asarray(shuffled, dtype=np.int64)]
        partners = mixup_partners(labels, 2)
        np.testing.assert_array_equal(partners, expected)
        assert (labels[partners] == labels).all() and sorted(partners) == list(range(23))


def test_natekar_draws_share_one_stream():
    u, zoom = natekar_draws(50)
    bits = stateful_uniform(0, 2**31 - 1, np.arange(50))[:, 0]  # op_seeds(0, 0)
    np.testing.assert_array_equal(u, uint32_to_float(bits))
    zoomed = np.flatnonzero(u >= 0.5)
    # the j-th zoomed image reads the int op's j-th draw: the same 32 bits as the j-th uniform
    np.testing.assert_array_equal(zoom[zoomed], bits[: len(zoomed)] % len(ZOOM_SCALES))


@pytest.fixture(scope="module")
def tf():
    tf = pytest.importorskip("tensorflow")
    return tf


@needs_tf
def test_uniform_kernels_match_tensorflow(tf):
    out = tf.raw_ops.RandomUniform(shape=[7], dtype=tf.float32, seed=5, seed2=9).numpy()
    np.testing.assert_array_equal(out, uint32_to_float(stateful_uniform(5, 9, [0], size=7)[0]))
    second = tf.raw_ops.RandomUniform(shape=[7], dtype=tf.float32, seed=5, seed2=9).numpy()  # the cached kernel's call 1
    np.testing.assert_array_equal(second, uint32_to_float(stateful_uniform(5, 9, [1], size=7)[0]))
    ints = [int(tf.raw_ops.RandomUniformInt(shape=tf.constant([], tf.int32), minval=tf.constant(0),
                                            maxval=tf.constant(16), seed=3, seed2=4)) for _ in range(4)]
    assert ints == (stateful_uniform(3, 4, range(4))[:, 0] % 16).tolist()
    tf.random.set_seed(0)  # resets the kernels: op seed 0 under global seed 0 is (0, 2^31 - 1)
    got = [float(tf.random.uniform([], seed=0)) for _ in range(3)]
    np.testing.assert_array_equal(got, uint32_to_float(stateful_uniform(*op_seeds(0, 0), range(3))[:, 0]))


@needs_tf
@pytest.mark.parametrize("n, buffer, global_seed, seed, count", [
    (10, 5, 0, 1, 30), (400, 5000, 0, 1, 1200), (400, 5000, None, 1, 500), (37, 16, 3, 7, 300), (1000, 100, None, 2, 900)])
def test_shuffle_matches_tensorflow(tf, n, buffer, global_seed, seed, count):
    tf.random.set_seed(global_seed)
    ds = tf.data.Dataset.range(n).repeat(-1).shuffle(buffer, seed=seed)
    got = np.array([int(v) for v in ds.take(count)])
    seeds = op_seeds(global_seed, seed)
    np.testing.assert_array_equal(got, shuffle_draws(np.arange(n), count, buffer, *seeds))
    # a second iterator of the same dataset reshuffles with the seed generator's next seeds
    again = np.array([int(v) for _, v in zip(range(count), ds)])
    np.testing.assert_array_equal(again, shuffle_draws(np.arange(n), count, buffer, *seeds, iteration=1))


@needs_tf
def test_natekar_draws_match_a_tensorflow_map(tf):
    # DataAugmentor's pattern: global seed 0, every random op seeded 0, one op run per element in a map,
    # the crop index drawn only in the zoom branch of a tf.cond
    tf.random.set_seed(0)

    def draw(x):
        u = tf.random.uniform([], seed=0)
        zoom = tf.cond(tf.random.uniform([], 0.0, 1.0, seed=0) < 0.5, lambda: tf.constant(-1),
                       lambda: tf.random.uniform([], 0, 16, dtype=tf.int32, seed=0))
        return u, zoom

    u_tf, zoom_tf = next(iter(tf.data.Dataset.range(50).map(draw).batch(50)))
    u, zoom = natekar_draws(50)
    np.testing.assert_array_equal(u_tf.numpy(), u)
    np.testing.assert_array_equal(zoom_tf.numpy(), np.where(u >= 0.5, zoom, -1))


@needs_tf
@pytest.mark.parametrize("global_seed", [0, 1, 12345])
def test_random_shuffle_and_eager_op_seeds_match_tensorflow(tf, global_seed):
    tf.random.set_seed(global_seed)

    @tf.function()
    def partners():
        tf.one_hot([0, 1], 2)  # other ops first: the op seed counts random ops only
        return tf.random.shuffle(range(500)), tf.random.shuffle(range(7))

    first, second = partners()
    np.testing.assert_array_equal(first.numpy(), random_shuffle(500, *op_seeds(global_seed, 0)))
    np.testing.assert_array_equal(second.numpy(), random_shuffle(7, *op_seeds(global_seed, 1)))
    # eager datasets without a seed take the global seed's op seeds, one per shuffle, in order
    tf.random.set_seed(global_seed)
    got = [[int(v) for v in tf.data.Dataset.range(37).repeat().shuffle(10).take(20)] for _ in range(3)]
    for draws, op in zip(got, eager_op_seeds(global_seed, 3)):
        np.testing.assert_array_equal(draws, shuffle_draws(np.arange(37), 20, 10, *op_seeds(global_seed, op)))


@needs_tf
@pytest.mark.parametrize("global_seed", [0, 5])
def test_eager_uniforms_are_random_saturations_factors(tf, global_seed):
    # Aithal et al.'s pattern: unseeded eager tf.random.uniform / random_saturation calls under a global seed
    tf.random.set_seed(global_seed)
    got = [float(tf.random.uniform([], 0.6, 1.6)) for _ in range(4)]
    np.testing.assert_array_equal(got, eager_uniforms(global_seed, eager_op_seeds(global_seed, 4), 0.6, 1.6))
    image = tf.constant(np.random.default_rng(1).uniform(0, 1, size=(2, 5, 5, 3)), tf.float32)
    tf.random.set_seed(global_seed)
    first, second = tf.image.random_saturation(image, 0.6, 1.6), tf.image.random_saturation(image, 0.6, 1.6)
    factors = eager_uniforms(global_seed, eager_op_seeds(global_seed, 2), 0.6, 1.6)
    np.testing.assert_array_equal(first.numpy(), tf.image.adjust_saturation(image, factors[0]).numpy())
    np.testing.assert_array_equal(second.numpy(), tf.image.adjust_saturation(image, factors[1]).numpy())
