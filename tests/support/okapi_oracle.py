"""rank_bm25.BM25Okapi as the Okapi oracle, plus the same scores with adarag's correctly rounded mean idf."""
from __future__ import annotations

import math
from collections import Counter
from typing import Callable, Sequence

import numpy as np
from rank_bm25 import BM25Okapi


def okapi_oracle(corpus: Sequence[Sequence[str]], k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25
                 ) -> Callable[[Sequence[str]], tuple[np.ndarray, np.ndarray, bool]]:
    """query -> (rank-bm25 scores [N], the same with mean idf = fsum(idf) / V [N], whether a query term is floored).

    adarag's mean idf is correctly rounded (rank-bm25 sums left to right), so the two differ at most in the last
    ulp and only when a query term's idf is floored (df > N/2)."""
    plain_rb = BM25Okapi(corpus, k1=k1, b=b, epsilon=epsilon)
    fixed_rb = BM25Okapi(corpus, k1=k1, b=b, epsilon=epsilon)
    n = len(corpus)
    raw = {t: math.log(n - f + 0.5) - math.log(f + 0.5) for t, f in Counter(t for d in corpus for t in set(d)).items()}
    mean = math.fsum(raw.values()) / len(raw) if raw else 0.0
    fixed_rb.idf = {t: epsilon * mean if v < 0 else v for t, v in raw.items()}

    def scores(query: Sequence[str]) -> tuple[np.ndarray, np.ndarray, bool]:
        with np.errstate(invalid="ignore", divide="ignore"):  # b=1 gives rank-bm25 0/0 on empty (unmatched) docs
            plain = np.asarray(plain_rb.get_scores(query), dtype=np.float64)
            fixed = np.asarray(fixed_rb.get_scores(query), dtype=np.float64)
        return plain, fixed, any(raw.get(t, 0.0) < 0 for t in query)

    return scores


def assert_okapi_close(got: np.ndarray, plain: np.ndarray, fixed: np.ndarray, floored: bool) -> None:
    """Bit-equal to the fsum-mean oracle; to rank-bm25 bit-equal unless a query term is floored, then rtol 1e-14."""
    np.testing.assert_array_equal(got, fixed)
    if floored:
        np.testing.assert_allclose(got, plain, rtol=1e-14, atol=0)
    else:
        np.testing.assert_array_equal(got, plain)
