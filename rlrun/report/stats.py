"""Aggregates over seeds: mean with a percentile-bootstrap confidence interval, and the interquartile mean.

Few seeds make parametric intervals unreliable, so we follow rliable (Agarwal et al., 2021,
"Deep RL at the Edge of the Statistical Precipice"): percentile bootstrap CIs and the IQM.
The bootstrap RNG is seeded, so the same runs always give the same report.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CONFIDENCE = 0.95
NUM_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0


def bootstrap_ci(
    samples: Sequence[float] | np.ndarray,
    confidence: float = CONFIDENCE,
    num_resamples: int = NUM_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap CI of the mean over the first axis (the seeds).

    `samples` is (seeds,) for one statistic or (seeds, points) for a whole curve; every point of
    a curve uses the same resampled seeds, so a band is the CI of resampled mean *curves*.
    Each resample is drawn as how often each seed is picked, which keeps memory at
    resamples x points however many seeds there are.
    """
    values = np.asarray(samples, dtype=float)
    if values.shape[0] == 0:
        raise ValueError("bootstrap_ci needs at least one sample")
    n = values.shape[0]
    counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=num_resamples)
    means = counts @ values.reshape(n, -1) / n
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha], axis=0)
    return low.reshape(values.shape[1:]), high.reshape(values.shape[1:])


def iqm(samples: Sequence[float]) -> float:
    """Interquartile mean: the mean of the sorted values after cutting floor(n/4) from each end.

    This is `scipy.stats.trim_mean(x, 0.25)`, the definition rliable uses; with fewer than four
    seeds nothing is cut and the IQM equals the mean.
    """
    values = np.sort(np.asarray(samples, dtype=float))
    if values.size == 0:
        raise ValueError("iqm needs at least one sample")
    cut = int(0.25 * values.size)
    return float(values[cut : values.size - cut].mean())
