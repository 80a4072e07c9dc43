"""95% intervals for accuracies: Wilson's score interval for a share of successes (passkey), and a percentile
bootstrap for means of scores that may be fractional (RULER's string_match_all), averaged over groups."""

from __future__ import annotations

import math
import random

Z95 = 1.959964


def wilson_interval(successes: int, trials: int) -> list[float]:
    """Wilson (1927): the 95% score interval of a binomial share, sensible at 0 and 1 and for few trials."""
    if trials == 0:
        return [0.0, 1.0]
    share = successes / trials
    centre = (share + Z95**2 / (2 * trials)) / (1 + Z95**2 / trials)
    half = Z95 * math.sqrt(share * (1 - share) / trials + Z95**2 / (4 * trials**2)) / (1 + Z95**2 / trials)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def bootstrap_interval(scores: list[list[float]], draws: int = 2000, seed: int = 0) -> list[float]:
    """95% percentile interval of the mean over groups of the group means, samples resampled within groups."""
    rng = random.Random(seed)
    means = []
    for _ in range(draws):
        groups = [sum(rng.choices(group, k=len(group))) / len(group) for group in scores]
        means.append(sum(groups) / len(groups))
    means.sort()
    return [means[int(0.025 * draws)], means[min(draws - 1, int(0.975 * draws))]]
