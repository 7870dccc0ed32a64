import numpy as np
import pytest

from indexers.dense import DenseIndex, DenseParams
from indexers.errors import ConfigError, IndexFormatError


def _unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_flat_is_exact_against_numpy():
    rng = np.random.default_rng(0)
    x, q = _unit(rng, 500, 32), _unit(rng, 7, 32)
    rows, scores = DenseIndex(x, DenseParams(use_gpu=False)).search(q, 10)
    ref = np.argsort(-(q @ x.T), axis=1, kind="stable")[:, :10]
    assert np.array_equal(rows, ref)
    assert np.allclose(scores, np.take_along_axis(q @ x.T, ref, axis=1), atol=1e-5)


def test_hnsw_recall_on_clustered_data_and_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    centers = _unit(rng, 20, 32)
    x = centers[rng.integers(0, 20, 2000)] + 0.1 * rng.standard_normal((2000, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[rng.integers(0, 2000, 50)] + 0.05 * rng.standard_normal((50, 32)).astype(np.float32)
    exact, _ = DenseIndex(x, DenseParams(use_gpu=False)).search(q, 10)
    h = DenseIndex(x, DenseParams(index="hnsw"))
    approx, _ = h.search(q, 10)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact)])
    assert recall >= 0.9
    h.save(tmp_path)
    again, _ = DenseIndex.load(tmp_path).search(q, 10)
    assert np.array_equal(again, approx)


def test_k_larger_than_n_and_bad_args(tmp_path):
    x = _unit(np.random.default_rng(2), 3, 8)
    d = DenseIndex(x, DenseParams(use_gpu=False))
    rows, _ = d.search(x[:1], 10)
    assert rows.shape == (1, 3) and rows[0, 0] == 0
    with pytest.raises(ConfigError):
        d.search(x[:1], 0)
    with pytest.raises(ConfigError, match="dim"):
        d.search(np.ones((1, 4), np.float32), 1)
    with pytest.raises(ConfigError):
        DenseParams(index="ivf")
    d.save(tmp_path)
    np.save(tmp_path / "embeddings.npy", np.ones((3, 8), np.float64))
    with pytest.raises(IndexFormatError, match="float32"):
        DenseIndex.load(tmp_path)
