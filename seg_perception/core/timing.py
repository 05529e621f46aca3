"""Summary statistics of timings (no ROS): one definition of mean / median / percentiles for every report.

The nodes' ``/diagnostics``, ``bench``, ``process`` summaries, the demo summary and ``replay``'s lateness all
summarise samples the same way: numpy's linear-interpolation percentiles (median = 50th).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def timing_summary(
    values: Sequence[float], digits: int = 3, percentiles: Sequence[int] = (90,)
) -> dict[str, float]:
    """``{"mean", "median", "p<q>" for each q in percentiles, "max", "n"}`` of ``values`` (e.g. stage times [ms]).

    Raises:
        ValueError: for no values.
    """
    if len(values) == 0:
        raise ValueError("no values to summarise")
    v = np.asarray(values, dtype=np.float64)
    out = {"mean": round(float(v.mean()), digits), "median": round(float(np.median(v)), digits)}
    out |= {f"p{q}": round(float(np.percentile(v, q)), digits) for q in percentiles}
    out |= {"max": round(float(v.max()), digits), "n": int(v.size)}
    return out
