"""Fragmentation (Mouton et al., arXiv 2411.04695): geometry, region counts and the measures, against
values worked out by hand or from the construction of hand-weighted networks."""

import hashlib

import numpy as np
import pytest
import torch

import measures
from measures import MeasureError, ModelView
from measures.stats.planes import (
    count_regions,
    count_skips,
    plane_grid,
    plane_labels,
    same_class_tuples,
    segment_skips,
    triplet_fragmentation,
)
from task_loaders import architectures, build_network

# -- helpers ---------------------------------------------------------------------------------------


def dense_net(input_size, layers):
    """A Dense stack with hand-set weights: ``layers`` = [(kernel (in, out), bias (out,), activation)]."""
    config = [{"layer_name": "Dense", "units": int(np.shape(k)[1]), "activation": act} for k, _, act in layers]
    net = build_network(config, [input_size])
    net.set_keras_weights([w for k, b, _ in layers for w in (np.asarray(k, np.float32), np.asarray(b, np.float32))])
    return net


def rotation3(seed=0):
    """Two orthonormal directions e1, e2 of R^3, in general position (not along the axes)."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q[:, 0], q[:, 1]


def zigzag_units(e, origin, length):
    """Dense units relu(e.(x - origin) - k), k = 0..length, and the read-out giving tri(s) - 0.5 for s = e.(x - origin).

    tri(s) = s on [0,1], 2 - s on [1,2], s - 2 on [2,3], ...: tri(s) - 0.5 changes sign exactly at s = k + 0.5.
    """
    kernel = np.repeat(e[:, None], length + 1, axis=1)
    bias = -(e @ origin) - np.arange(length + 1)
    readout = np.array([1.0] + [2.0 * (-1) ** k for k in range(1, length + 1)])
    return kernel, bias, readout


def cells_per_axis(length):
    """Cells [0, 0.5), (0.5, 1.5), ... cut by the boundaries s = k + 0.5 inside (0, length)."""
    return 1 + sum(0 < k + 0.5 < length for k in range(length + 1))


def random_net(layers, input_shape, x, y, seed):
    """A network with random kernels (numpy seed), zero biases, and a least-squares head fit to (x, y).

    Zero biases keep the layers sensitive to the input, and the fitted head spreads predictions over
    classes: planes through its training samples show several class regions.
    """
    net = build_network(layers, input_shape)
    rng = np.random.default_rng(seed)
    weights = []
    for w in net.get_keras_weights():
        fan_in = int(np.prod(w.shape[:-1])) if w.ndim > 1 else 1
        weights.append(rng.normal(0, np.sqrt(2 / fan_in), w.shape) if w.ndim > 1 else np.zeros(w.shape))
    net.set_keras_weights(weights)
    view = ModelView(net, (x, y))
    feats = view.forward(x, view.layer_names[-2]).double()
    design = torch.cat([feats, torch.ones(len(x), 1, dtype=torch.float64)], 1)
    targets = torch.nn.functional.one_hot(y, int(y.max()) + 1).double()
    solution = torch.linalg.lstsq(design, targets).solution
    weights[-2], weights[-1] = solution[:-1].numpy(), solution[-1].numpy()
    net.set_keras_weights(weights)
    return net


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 1, 8, 8, generator=g)
    y = torch.randint(0, 3, (60,), generator=g)
    return x, y


@pytest.fixture(scope="module")
def cnn(images):
    x, y = images
    return random_net(architectures.cnn4((8, 8, 1), 3, width=4), (8, 8, 1), x, y, seed=0)


SMALL = {"resolution": 16, "num_triplets": 6}

# -- count_regions / count_skips -----------------------------------------------------------------


def test_count_regions_on_hand_made_images():
    assert count_regions(np.zeros((5, 7), int)) == 1
    assert count_regions(np.full((1, 1), 4)) == 1
    # three vertical stripes of classes 7, -3, 7: class 7 has two regions, class -3 one
    stripes = np.array([[7, -3, 7]] * 4)
    assert count_regions(stripes) == 3
    # two blobs of class 1 on a background of 0, and a blob of class 2
    img = np.zeros((6, 6), int)
    img[0:2, 0:2] = 1
    img[4:6, 4:6] = 1
    img[0, 5] = 2
    assert count_regions(img) == 1 + 2 + 1
    # a ring of class 1 cuts the background in two (inside and outside)
    ring = np.zeros((7, 7), int)
    ring[1:6, 1:6] = 1
    ring[2:5, 2:5] = 0
    assert count_regions(ring) == 2 + 1
    # k classes, each one blob, score k
    blocks = np.repeat(np.arange(4), 3)[None, :].repeat(3, axis=0)
    assert count_regions(blocks) == 4


def test_count_regions_joins_diagonal_contact_with_8_connectivity_only():
    checker = np.array([[0, 1], [1, 0]])
    assert count_regions(checker) == 2  # each class's two pixels touch at a corner
    assert count_regions(checker, connectivity=4) == 4
    # a diagonal line of 1s: connected for 8, five pixels for 4; the 0s on either side touch
    # diagonally across it ((0,1)-(1,0)), so they form one region for 8 and two for 4
    diagonal = np.eye(5, dtype=int)
    assert count_regions(diagonal) == 1 + 1
    assert count_regions(diagonal, connectivity=4) == 5 + 2
    assert count_regions(diagonal, connectivity=4) > count_regions(diagonal)


def test_count_regions_refuses_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        count_regions(np.zeros(5, int))
    with pytest.raises(ValueError, match="integer"):
        count_regions(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="connectivity"):
        count_regions(np.zeros((2, 2), int), connectivity=6)


def test_count_skips_by_hand():
    assert count_skips([0, 0, 1, 1, 0, 2]) == 3
    assert count_skips([5]) == 0
    assert count_skips([1, 1, 1]) == 0


# -- plane_grid --------------------------------------------------------------------------------------


def test_plane_grid_puts_anchors_on_grid_nodes_and_is_orthonormal():
    rng = np.random.default_rng(1)
    shape = (2, 3, 3)  # any tensor shape
    x1 = rng.normal(size=18)
    d = rng.normal(size=18)
    w = rng.normal(size=18)
    w -= (w @ d) / (d @ d) * d  # orthogonal to d
    x2, x3 = x1 + d, x1 + 0.5 * d + w
    # bounding box u in [0, |d|], v in [0, |w|]; padding 0.25 and R = 7 make the grid step a quarter
    # of each extent: u nodes -0.25|d|, 0, ..., 1.25|d|; x1 -> (1, 1), x2 -> (5, 1), x3 -> (3, 5)
    plane = plane_grid(*(torch.tensor(p.reshape(shape), dtype=torch.float64) for p in (x1, x2, x3)),
                       resolution=7, padding=0.25)
    nd, nw = np.linalg.norm(d), np.linalg.norm(w)
    np.testing.assert_allclose(plane.anchors, [[0, 0], [nd, 0], [0.5 * nd, nw]], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(plane.u, np.linspace(-0.25 * nd, 1.25 * nd, 7), atol=1e-12)
    np.testing.assert_allclose(plane.v, np.linspace(-0.25 * nw, 1.25 * nw, 7), atol=1e-12)
    assert plane.points.shape == (7, 7, *shape)
    np.testing.assert_allclose(plane.points[1, 1].numpy().ravel(), x1, atol=1e-12)
    np.testing.assert_allclose(plane.points[5, 1].numpy().ravel(), x2, atol=1e-12)
    np.testing.assert_allclose(plane.points[3, 5].numpy().ravel(), x3, atol=1e-12)
    a, b = plane.a.numpy().ravel(), plane.b.numpy().ravel()
    np.testing.assert_allclose([a @ a, b @ b, a @ b], [1, 1, 0], atol=1e-12)
    np.testing.assert_allclose(a, d / nd, atol=1e-12)
    np.testing.assert_allclose(b, w / nw, atol=1e-12)
    # every grid point lies on the plane: x - x1 is in span(a, b)
    offsets = plane.points.reshape(49, -1).numpy() - x1
    residual = offsets - np.outer(offsets @ a, a) - np.outer(offsets @ b, b)
    assert np.abs(residual).max() < 1e-12


def test_plane_grid_bounding_box_covers_an_anchor_outside_the_segment():
    # x3 projects before x1: u runs from a.(x3 - x1) = -2 to |x2 - x1| = 4, plus 10% of 6 on each side
    plane = plane_grid(torch.tensor([0.0, 0.0]), torch.tensor([4.0, 0.0]), torch.tensor([-2.0, 3.0]), resolution=5)
    np.testing.assert_allclose(plane.anchors, [[0, 0], [4, 0], [-2, 3]], atol=1e-12)
    np.testing.assert_allclose(plane.u, np.linspace(-2.6, 4.6, 5), atol=1e-6)
    np.testing.assert_allclose(plane.v, np.linspace(-0.3, 3.3, 5), atol=1e-6)
    assert plane.points.dtype == torch.float32


def test_plane_grid_refuses_degenerate_triplets():
    p, q = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="x1 and x2 coincide"):
        plane_grid(p, p.clone(), q)
    with pytest.raises(ValueError, match="collinear"):
        plane_grid(p, q, p + 3 * (q - p))
    with pytest.raises(ValueError, match="collinear"):
        plane_grid(p, q, p.clone())
    with pytest.raises(ValueError, match="one shape"):
        plane_grid(p, q, torch.zeros(2))
    with pytest.raises(ValueError, match="resolution"):
        plane_grid(p, q, torch.zeros(3), resolution=1)
    with pytest.raises(ValueError, match="padding"):
        plane_grid(p, q, torch.zeros(3), padding=-0.1)


# -- analytic networks -------------------------------------------------------------------------------


def _classes_present(kernel, bias, triplet, resolution, padding):
    """Classes the linear map x -> x W + b predicts on the triplet's grid, from a plane built here in numpy."""
    x1, x2, x3 = (np.asarray(p, np.float64) for p in triplet)
    a = (x2 - x1) / np.linalg.norm(x2 - x1)
    r = (x3 - x1) - ((x3 - x1) @ a) * a
    b = r / np.linalg.norm(r)
    coords = np.array([[0, 0], [np.linalg.norm(x2 - x1), 0], [(x3 - x1) @ a, (x3 - x1) @ b]])
    lo, hi = coords.min(0), coords.max(0)
    u = np.linspace(lo[0] - padding * (hi - lo)[0], hi[0] + padding * (hi - lo)[0], resolution)
    v = np.linspace(lo[1] - padding * (hi - lo)[1], hi[1] + padding * (hi - lo)[1], resolution)
    points = x1 + u[:, None, None] * a + v[None, :, None] * b
    return len(np.unique((points @ kernel + bias).argmax(-1)))


def test_linear_classifier_has_one_region_per_class_present():
    # 2-D inputs, logits x W + b: class 0 wins for x > 0, class 1 for x < 0, class 2 never (bias -10)
    two = (np.array([[1.0, -1.0, 0.0], [0.0, 0.0, 0.0]]), np.array([0.0, 0.0, -10.0]))
    # three unit directions 120 degrees apart: three sectors meeting at the origin
    angles = np.array([90, 210, 330]) * np.pi / 180
    three = (np.stack([np.cos(angles), np.sin(angles)]), np.zeros(3))
    cases = [
        (two, [[-1, 0], [1, 0], [0, 1]], 2),  # the boundary x = 0 crosses the plane
        (two, [[1, 0], [3, 0], [2, 1]], 1),  # the plane lies in x > 0
        (three, [[-1, -1], [1, -1], [0, 1]], 3),  # the origin is inside the triangle
        (three, [[0, 2], [1, 3], [-1, 3]], 1),  # far up the 90-degree direction
    ]
    for (kernel, bias), triplet, present in cases:
        net = dense_net(2, [(kernel, bias, "linear")])
        triplets = torch.tensor([triplet], dtype=torch.float32)
        assert _classes_present(kernel, bias, triplet, 25, 0.1) == present
        assert triplet_fragmentation(net, triplets, resolution=25)[0] == present
        assert triplet_fragmentation(net, triplets, resolution=25, normalize=True)[0] == 1.0


def test_linear_classifier_in_high_dimension_counts_classes_present():
    rng = np.random.default_rng(3)
    kernel, bias = rng.normal(size=(10, 6)), rng.normal(size=6)
    net = dense_net(10, [(kernel, bias, "linear")])
    triplets = torch.tensor(rng.normal(size=(8, 3, 10)) * 3, dtype=torch.float32)
    values = triplet_fragmentation(net, triplets, resolution=40)
    expected = [_classes_present(kernel, bias, t.numpy(), 40, 0.1) for t in triplets]
    assert values.tolist() == expected
    assert max(expected) >= 3  # several classes do cross these planes


def _coordinate_net(length, classes, seed=0):
    """Inputs in R^3; s = e1.(x - o), t = e2.(x - o) on a tilted plane; zx = tri(s) - 0.5, zy = tri(t) - 0.5.

    classes "stripes": 2 logits (0, zx): class 1 where zx > 0, stripes cut at s = k + 0.5.
    classes "four": logits (zx + zy, zx - zy, -zx + zy, -zx - zy): the class is (sign zx, sign zy), so
        cells that touch, even at a corner, differ in class.
    classes "two": logits (|zx + zy|, |zx - zy|): a two-colour checkerboard (class 0 where zx zy > 0).
    """
    e1, e2 = rotation3(seed)
    origin = np.array([0.3, -0.2, 0.5])
    kx, bx, rx = zigzag_units(e1, origin, length)
    ky, by, ry = zigzag_units(e2, origin, length)
    hidden = (np.concatenate([kx, ky], 1), np.concatenate([bx, by]), "relu")
    n = length + 1
    zx = np.concatenate([rx, np.zeros(n)])  # readout of zx + 0.5 from the hidden units
    zy = np.concatenate([np.zeros(n), ry])
    if classes == "stripes":
        layers = [hidden, (np.stack([np.zeros(2 * n), zx], 1), np.array([0.0, -0.5]), "linear")]
    elif classes == "four":
        signs = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]])
        kernel = np.stack([sx * zx + sy * zy for sx, sy in signs], 1)
        layers = [hidden, (kernel, -0.5 * signs.sum(1), "linear")]
    else:
        # relu(+-(zx + zy)), relu(+-(zx - zy)), then |.| = relu(s) + relu(-s)
        signs = np.array([[1, 1], [-1, -1], [1, -1], [-1, 1]])
        kernel = np.stack([sx * zx + sy * zy for sx, sy in signs], 1)
        absolute = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], float)
        layers = [hidden, (kernel, -0.5 * signs.sum(1), "relu"), (absolute, np.zeros(2), "linear")]
    net = dense_net(3, layers)
    # anchors: o, o + L e1, o + L e2; with padding 0 the grid is exactly (s, t) in [0, L]^2
    triplet = torch.tensor(np.stack([origin, origin + length * e1, origin + length * e2]), dtype=torch.float32)
    return net, triplet[None]


def test_stripes_give_one_region_per_stripe():
    length, resolution = 3, 16  # grid step 0.2: nodes ..., 0.4, 0.6, ...; never on a boundary k + 0.5
    net, triplets = _coordinate_net(length, "stripes")
    stripes = cells_per_axis(length)  # (0, 0.5), (0.5, 1.5), (1.5, 2.5), (2.5, 3]: 4
    assert stripes == 4
    labels, valid = plane_labels(net, triplets, resolution, padding=0.0)
    assert valid.all()
    # the stripes run along t: every column of the label image (fixed s) is one class
    assert (labels[0] == labels[0][:, :1]).all()
    assert triplet_fragmentation(net, triplets, resolution, padding=0.0)[0] == stripes
    # normalized: 4 regions of 2 classes
    assert triplet_fragmentation(net, triplets, resolution, padding=0.0, normalize=True)[0] == stripes / 2


def test_four_class_checkerboard_gives_one_region_per_cell():
    length, resolution = 3, 16
    net, triplets = _coordinate_net(length, "four")
    cells = cells_per_axis(length) ** 2  # 16 cells; no two same-class cells touch, even diagonally
    assert triplet_fragmentation(net, triplets, resolution, padding=0.0)[0] == cells
    labels, _ = plane_labels(net, triplets, resolution, padding=0.0)
    assert len(np.unique(labels)) == 4


def test_two_class_checkerboard_is_joined_at_corners_by_8_connectivity():
    length, resolution = 3, 16
    net, triplets = _coordinate_net(length, "two")
    labels, _ = plane_labels(net, triplets, resolution, padding=0.0)
    # same-colour cells touch at corners: 8-connectivity makes one region per colour ...
    assert triplet_fragmentation(net, triplets, resolution, padding=0.0)[0] == 2
    # ... while 4-connectivity sees every cell
    assert count_regions(labels[0], connectivity=4) == cells_per_axis(length) ** 2


def test_plane_labels_equal_classifying_plane_grid_points_whatever_the_batch_size(cnn, images):
    x, y = images
    triplets = x[torch.as_tensor(same_class_tuples(y.numpy(), 5, np.random.default_rng(0)))]
    expected = np.stack([
        cnn(plane_grid(*t, resolution=9).points.reshape(81, 1, 8, 8)).argmax(1).reshape(9, 9).numpy()
        for t in triplets
    ])
    for batch_size in (1, 7, 81, 1000):  # batches inside one plane and across planes
        labels, valid = plane_labels(cnn, triplets, resolution=9, batch_size=batch_size)
        assert valid.all()
        np.testing.assert_array_equal(labels, expected)


def test_degenerate_triplets_are_nan_and_skipped_with_a_count(cnn, images):
    x, _ = images
    triplets = torch.stack([x[:3], torch.stack([x[0], x[0], x[1]]), torch.stack([x[0], x[1], 2 * x[1] - x[0]])])
    values = triplet_fragmentation(cnn, triplets, resolution=8)
    assert np.isfinite(values[0]) and np.isnan(values[1:]).all()
    labels, valid = plane_labels(cnn, triplets, resolution=8)
    assert valid.tolist() == [True, False, False] and (labels[1:] == -1).all()

    # a measure skips them with a warning giving the count, and fails when nothing is left
    same = torch.zeros(9, 1, 8, 8)
    same[3:] = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    labels_ = torch.tensor([0, 0, 0, 1, 1, 1, 1, 1, 1])  # class 0: three identical samples
    view = ModelView(cnn, (same, labels_), model_id="dup")
    with pytest.warns(RuntimeWarning, match=r"skipped 2 of 4 degenerate triplets"):
        measures.get("fragmentation")(view, resolution=8, num_triplets=4)
    view = ModelView(cnn, (torch.zeros(3, 1, 8, 8), torch.zeros(3, dtype=torch.int64)), model_id="dup")
    with pytest.raises(MeasureError, match="model dup: fragmentation: every triplet is degenerate"):
        measures.get("fragmentation")(view, resolution=8, num_triplets=2)


# -- skips --------------------------------------------------------------------------------------------


def test_segment_skips_by_hand_on_threshold_functions():
    # class 1 iff x > 0.35 (logits (0, x - 0.35))
    threshold = dense_net(1, [(np.array([[0.0, 1.0]]), np.array([0.0, -0.35]), "linear")])
    pairs = torch.tensor([[[0.0], [1.0]], [[0.0], [0.3]], [[1.0], [-1.0]], [[0.5], [0.5]]])
    # R = 11: points 0, 0.1, ..., 1: one change between 0.3 and 0.4; none below 0.35; one back across it
    assert segment_skips(threshold, pairs, resolution=11).tolist() == [1, 0, 1, 0]
    # class 1 iff 0.25 < x < 0.55: relu(x - 0.25) - 2 relu(x - 0.4) > 0 (a tent peaking at 0.4)
    bump = dense_net(1, [(np.array([[1.0, 1.0]]), np.array([-0.25, -0.4]), "relu"),
                         (np.array([[0.0, 1.0], [0.0, -2.0]]), np.array([0.0, 0.0]), "linear")])
    assert segment_skips(bump, pairs[:1], resolution=11).tolist() == [2]  # 0.3, 0.4, 0.5 are class 1


def test_fragmentation_skips_measure_counts_threshold_crossings():
    threshold = dense_net(1, [(np.array([[0.0, 1.0]]), np.array([0.0, -0.35]), "linear")])
    rng = np.random.default_rng(2)
    x = torch.tensor(rng.uniform(0, 1, size=(40, 1)), dtype=torch.float32)
    y = torch.tensor(rng.integers(0, 2, 40))
    view = ModelView(threshold, (x, y), model_id="7", task_name="skips")
    value = measures.get("fragmentation_skips")(view, num_pairs=10)
    # a segment between two points crosses the threshold once iff they lie on either side of it
    pairs = same_class_tuples(y.numpy(), 10, view.rng("fragmentation_skips"), size=2)
    side = x.numpy().ravel() > 0.35
    expected = np.mean(side[pairs[:, 0]] != side[pairs[:, 1]])
    assert 0 < expected < 1
    assert value == pytest.approx(expected)


# -- sampling and the measures ---------------------------------------------------------------------------


def test_same_class_tuples_are_same_class_and_spread_evenly():
    labels = np.array([0] * 10 + [1] * 5 + [2] * 2 + [3] * 8)
    index = same_class_tuples(labels, 7, np.random.default_rng(0))
    assert index.shape == (7, 3)
    assert all(len(set(row)) == 3 for row in index)  # distinct samples
    classes = labels[index]
    assert (classes == classes[:, :1]).all()
    counts = np.bincount(classes[:, 0], minlength=4)
    assert counts[2] == 0  # two samples cannot make a triplet
    assert sorted(counts[[0, 1, 3]].tolist()) == [2, 2, 3]  # 7 over 3 classes
    with pytest.raises(ValueError, match="no class has 3"):
        same_class_tuples(np.array([0, 0, 1, 1]), 2, np.random.default_rng(0))


def _shared_stream(key):
    """The generator ``view.rng`` documents for a task-shared stream: sha256 of "<task>/<stream>/shared[#r<k>]"."""
    return np.random.default_rng(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little"))


def test_fragmentation_is_deterministic_and_seeded_by_task_and_repeat(cnn, images):
    x, y = images
    value = measures.get("fragmentation")(ModelView(cnn, (x, y), model_id="3", task_name="task_a"), **SMALL)
    again = measures.get("fragmentation")(ModelView(cnn, (x, y), model_id="3", task_name="task_a"), **SMALL)
    assert value == again
    assert value > 1  # the fitted head makes these planes fragmented

    def triplets(task_name, repeat=0):
        key = f"{task_name}/fragmentation/shared" + (f"#r{repeat}" if repeat else "")
        return same_class_tuples(y.numpy(), 6, _shared_stream(key))

    assert not np.array_equal(triplets("task_a"), triplets("task_b"))
    # the measure is the mean over exactly those triplets
    index = torch.as_tensor(triplets("task_a"))
    per_triplet = triplet_fragmentation(cnn, x[index], resolution=16)
    assert value == pytest.approx(per_triplet.mean())
    median = measures.get("fragmentation")(ModelView(cnn, (x, y), model_id="3", task_name="task_a"),
                                           aggregation="median", **SMALL)
    assert median == pytest.approx(np.median(per_triplet))
    # repeat 1 draws other triplets, and the value is their mean
    repeat1 = measures.get("fragmentation")(ModelView(cnn, (x, y), model_id="3", task_name="task_a", repeat=1),
                                            **SMALL)
    assert not np.array_equal(triplets("task_a", 1), triplets("task_a"))
    assert repeat1 == pytest.approx(triplet_fragmentation(cnn, x[torch.as_tensor(triplets("task_a", 1))],
                                                          resolution=16).mean())


def test_every_model_of_a_repeat_gets_the_same_triplets_and_pairs(images):
    """Common random numbers: two models of one architecture (different weights, different ids) are
    measured on the same triplets (all three variants) and segment pairs in a repeat."""
    x, y = images
    nets = [random_net(architectures.cnn4((8, 8, 1), 3, width=4), (8, 8, 1), x, y, seed=s) for s in (0, 1)]
    drawn = {}

    class SpyView(ModelView):
        def rng(self, stream=None, **kwargs):
            generator = super().rng(stream, **kwargs)
            state = generator.bit_generator.state["state"]["state"]  # where the stream starts
            drawn.setdefault((self.model_id, self.repeat, self.measure_name), []).append(state)
            return generator

    for repeat in (0, 1):
        for model_id, net in zip("ab", nets):
            view = SpyView(net, (x, y), model_id=model_id, task_name="t", repeat=repeat)
            measures.get("fragmentation")(view, **SMALL)
            measures.get("fragmentation_hidden")(view, **SMALL)
            measures.get("fragmentation_skips")(view, resolution=20, num_pairs=6)
    for repeat in (0, 1):
        for name in ("fragmentation", "fragmentation_hidden", "fragmentation_skips"):
            assert drawn[("a", repeat, name)] == drawn[("b", repeat, name)]
        # the two plane variants share one stream (paired); the segments draw their own
        assert drawn[("a", repeat, "fragmentation")] == drawn[("a", repeat, "fragmentation_hidden")]
        assert drawn[("a", repeat, "fragmentation")] != drawn[("a", repeat, "fragmentation_skips")]
    assert drawn[("a", 0, "fragmentation")] != drawn[("a", 1, "fragmentation")]
    # and the drawn triplets are the documented shared ones, whatever the model: values are their means
    index = torch.as_tensor(same_class_tuples(y.numpy(), 6, _shared_stream("t/fragmentation/shared")))
    for model_id, net in zip("ab", nets):
        value = measures.get("fragmentation")(ModelView(net, (x, y), model_id=model_id, task_name="t"), **SMALL)
        assert value == pytest.approx(triplet_fragmentation(net, x[index], resolution=16).mean())


def test_hidden_variant_at_an_identity_layer_equals_input_space(images):
    x, y = images
    layers = [{"layer_name": "Activation", "activation": "linear"}] + architectures.cnn4((8, 8, 1), 3, width=4)
    net = random_net(layers, (8, 8, 1), x, y, seed=0)
    view = ModelView(net, (x, y), model_id="1", task_name="t")
    assert view.layer_names[0] == "activation" and "activation" not in view.hidden_layers
    value = measures.get("fragmentation")(view, **SMALL)
    assert measures.get("fragmentation_hidden")(view, layer="activation", **SMALL) == value
    assert value > 1


def test_hidden_variant_before_a_linear_head_has_one_region_per_class(images):
    # vgg with one hidden Dense: after its ReLU only the linear logits layer remains, so on any plane
    # of that representation every class present is one convex region (normalized value exactly 1)
    x, y = images
    net = random_net(architectures.vgg((8, 8, 1), 3, width=4, depth=1, dense_units=32), (8, 8, 1), x, y, seed=1)
    view = ModelView(net, (x, y), model_id="2", task_name="t")
    hidden = view.hidden_layers
    assert view.layer_names[view.layer_names.index(hidden[-1]) + 1] == view.layer_names[-1]
    assert measures.get("fragmentation_hidden")(view, layer="last", normalize=True, **SMALL) == 1.0
    raw = measures.get("fragmentation_hidden")(view, layer=hidden[-1], **SMALL)
    assert raw > 1  # several classes present, one region each
    # earlier layers and the input are more fragmented than one region per class
    assert measures.get("fragmentation")(view, normalize=True, **SMALL) > 1.0


def test_hidden_variant_layer_choices(cnn, images):
    x, y = images
    view = ModelView(cnn, (x, y), model_id="4", task_name="t")
    hidden = view.hidden_layers
    assert len(hidden) == 4
    per_layer = [measures.get("fragmentation_hidden")(view, layer=name, **SMALL) for name in hidden]
    assert measures.get("fragmentation_hidden")(view, **SMALL) == per_layer[2]  # the middle: hidden[4 // 2]
    index = view.layer_names.index(hidden[1])  # an int indexes view.layer_names, as Keras' model.layers
    assert measures.get("fragmentation_hidden")(view, layer=index, **SMALL) == per_layer[1]
    assert measures.get("fragmentation_hidden")(view, layer="all", **SMALL) == pytest.approx(np.mean(per_layer))
    with pytest.raises(MeasureError, match="no layer 'nope'"):
        measures.get("fragmentation_hidden")(view, layer="nope")
    with pytest.raises(MeasureError, match="out of range"):
        measures.get("fragmentation_hidden")(view, layer=len(view.layer_names))


def test_measures_are_registered_with_their_parameters():
    for name in ("fragmentation", "fragmentation_hidden", "fragmentation_skips"):
        entry = measures.get(name)
        assert entry.sign == 1
        assert "2411.04695" in entry.source
    assert measures.get("fragmentation").params == {
        "resolution": 24, "padding": 0.1, "num_triplets": 20, "aggregation": "mean", "normalize": False,
        "batch_size": 64,
    }
    assert measures.get("fragmentation_hidden").params["layer"] == "middle"
    assert measures.get("fragmentation_skips").params == {
        "resolution": 100, "num_pairs": 50, "aggregation": "mean", "batch_size": 64,
    }


def test_measures_refuse_bad_parameters(cnn, images):
    view = ModelView(cnn, images, model_id="5")
    bad = {"resolution": 1, "padding": -1, "num_triplets": 0, "aggregation": "max", "normalize": "yes",
           "batch_size": 0}
    for name, value in bad.items():
        # a value of the wrong kind is refused by the registry, a bad value of the right kind by the measure
        with pytest.raises(MeasureError, match=f"measure 'fragmentation'(: | expects ){name}"):
            measures.get("fragmentation")(view, **{name: value})
