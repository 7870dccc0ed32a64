"""indexers.errors: the one check positive counts go through."""
from __future__ import annotations


def test_positive_int_is_the_one_count_check():
    import numpy as np
    import pytest

    from indexers.errors import ConfigError, positive_int

    assert positive_int(3, "k") == 3 and positive_int(np.int64(2), "k") == 2
    for bad in (0, -1, True, 2.0, "3", None, np.float64(1.0)):
        with pytest.raises(ConfigError, match="k must be a positive int"):
            positive_int(bad, "k")
    assert positive_int(1024, "threads", 1024) == 1024
    with pytest.raises(ConfigError, match="threads must be a positive int from 1 to 1,024, got int 1025"):
        positive_int(1025, "threads", 1024)
