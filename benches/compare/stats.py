"""Interval and verdict rules shared by summarize.py and pairs.py.

One rule, fixed before looking at any figure: a comparison of two peers is
the median over rounds of the per-round ratio A/B (both peers ran in every
round, in rotated order, so drift that hits a round hits both), and its
95 % confidence interval is the distribution-free interval for a median:
the order statistics (k, n+1-k) of the n per-round ratios, with the largest
k whose coverage 1 - 2 P(Bin(n, 1/2) < k) is still >= 95 % (the inverted
sign test; no assumption about the shape of the spread). Such an interval
exists from 6 rounds on (n = 6: the min-max range, 96.9 %); for n = 7 it is
also min-max (98.4 %), for n = 9 the 2nd-8th (96.1 %).

Verdict from the interval alone: entirely on the better side of 1 is
"ahead", entirely on the worse side "behind", anything that contains 1 is
"tie (not distinguishable)". Fewer than 6 rounds give no interval, so no
verdict other than a tie can be drawn from them.
"""
from math import comb

LEVEL = 0.95
# A comparison published in BENCHMARKS.md needs at least this many rounds.
PUBLISH_ROUNDS = 7


def median(xs):
    s = sorted(xs)
    n = len(s)
    if n == 0:
        return None
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def median_ci(xs, level=LEVEL):
    """(low, high, coverage) of the distribution-free interval for the
    median of xs, or None when there are too few values for `level`."""
    n = len(xs)
    s = sorted(xs)
    best = None
    for k in range(1, n // 2 + 1):
        below = sum(comb(n, i) for i in range(k)) / 2 ** n
        cover = 1 - 2 * below
        if cover >= level:
            best = (s[k - 1], s[n - k], cover)
    return best


def verdict(ci, higher_is_better=True):
    """ahead / behind / tie, from a ratio's interval (A/B)."""
    if ci is None:
        return "tie (not distinguishable: too few rounds for an interval)"
    lo, hi, _ = ci
    if lo > 1:
        return "ahead" if higher_is_better else "behind"
    if hi < 1:
        return "behind" if higher_is_better else "ahead"
    return "tie (not distinguishable)"


def is_failed(run):
    """A run whose figures must not be used: marked failed by run.sh, or
    with wrong bytes or bad deliveries in its report."""
    rep = run.get("report") or {}
    return bool(run.get("failed")) or rep.get("mismatched_bytes", 0) > 0 \
        or rep.get("delivery_errors", 0) > 0


def _self_test():
    # The coverage table in the docstring.
    assert median_ci([1, 2, 3, 4, 5]) is None
    lo, hi, c = median_ci([3, 1, 2, 6, 5, 4])
    assert (lo, hi) == (1, 6) and abs(c - 0.96875) < 1e-9
    lo, hi, c = median_ci(list(range(1, 10)))
    assert (lo, hi) == (2, 8) and abs(c - (1 - 20 / 512)) < 1e-9
    assert verdict((1.01, 1.2, 0.98)) == "ahead"
    assert verdict((0.8, 0.99, 0.98)) == "behind"
    assert verdict((0.8, 0.99, 0.98), higher_is_better=False) == "ahead"
    assert verdict((0.9, 1.1, 0.98)).startswith("tie")
    assert verdict(None).startswith("tie")
    assert median([3, 1, 2]) == 2 and median([4, 1, 2, 3]) == 2.5
    assert is_failed({"failed": True, "report": {}})
    assert is_failed({"report": {"delivery_errors": 2}})
    assert not is_failed({"report": {"mismatched_bytes": 0}})


if __name__ == "__main__":
    _self_test()
    print("stats.py: self-test passed")
