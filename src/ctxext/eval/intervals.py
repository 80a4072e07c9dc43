"""95% intervals for accuracies. Wilson's score interval for a share out of n trials (passkey trials, RULER samples;
a RULER sample that finds some of its answers counts as that fraction of a success), which stays honest at 0%
and 100% where a bootstrap collapses to a point; and for an average over subtasks, the average with the
subtasks' standard errors (half an interval over 1.96) combined in quadrature."""

from __future__ import annotations

import math

Z95 = 1.959964


def wilson_interval(successes: float, trials: int) -> list[float]:
    """Wilson (1927): the 95% score interval of a binomial share, sensible at 0 and 1 and for few trials."""
    if trials == 0:
        return [0.0, 1.0]
    share = successes / trials
    centre = (share + Z95**2 / (2 * trials)) / (1 + Z95**2 / trials)
    half = Z95 * math.sqrt(share * (1 - share) / trials + Z95**2 / (4 * trials**2)) / (1 + Z95**2 / trials)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def average_interval(means: list[float], intervals: list[list[float]]) -> list[float]:
    """The 95% interval of the mean of ``means``, each with its own 95% interval, taken as independent."""
    average = sum(means) / len(means)
    spread = math.sqrt(sum(((hi - lo) / (2 * Z95)) ** 2 for lo, hi in intervals)) / len(means)
    return [max(0.0, average - Z95 * spread), min(1.0, average + Z95 * spread)]
