"""The one metrics function, video-level grouping, temperature scaling and threshold choice."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

from fakeprobe.model.calibration import fit_temperature, threshold_at_fpr
from fakeprobe.model.metrics import compute_metrics, equal_error_rate, video_level


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.asarray(z, np.float64)))


@pytest.fixture(scope="module")
def scored():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    z = rng.normal(0, 1.5, 400) + 1.2 * y
    z[::17] = z[::17].round()  # some ties
    return y, z


def test_auc_ap_logloss_match_sklearn(scored):
    y, z = scored
    m = compute_metrics(y, z)
    assert m["n"] == 400 and m["n_fake"] == int(y.sum())
    assert m["auc"] == pytest.approx(roc_auc_score(y, z), abs=1e-12)
    assert m["ap"] == pytest.approx(average_precision_score(y, z), abs=1e-12)
    assert m["logloss"] == pytest.approx(log_loss(y, _sigmoid(z)), rel=1e-9)
    assert 0.5 < m["auc"] < 1.0 and 0.0 <= m["eer"] <= 0.5 and 0.0 <= m["ece"] <= 1.0
    # scores are compared as logits: any monotone rescaling leaves the ranking metrics unchanged
    m2 = compute_metrics(y, 3 * z + 1)
    for k in ("auc", "ap", "eer"):
        assert m2[k] == pytest.approx(m[k])


def test_equal_error_rate_hand_computed():
    # descending: .9 .8 .7 (fakes) .6 (real) .4 (fake) .3 .2 .1 (reals); flagging >= .6 gives
    # FPR = 1/4 (the .6 real) and FNR = 1/4 (the .4 fake)
    y = [0, 0, 0, 0, 1, 1, 1, 1]
    s = [0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9]
    assert equal_error_rate(np.array(y), np.array(s)) == pytest.approx(0.25)
    assert compute_metrics(y, np.log(np.array(s) / (1 - np.array(s))))["eer"] == pytest.approx(0.25)
    # perfectly separated: 0; perfectly inverted: 1
    assert compute_metrics([0, 0, 1, 1], [-2, -1, 1, 2])["eer"] == pytest.approx(0.0)
    assert compute_metrics([0, 0, 1, 1], [2, 1, -1, -2])["eer"] == pytest.approx(1.0)


def test_accuracy_at_threshold():
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.4, 0.7, 0.3, 0.6, 0.95])
    z = np.log(p / (1 - p))
    assert compute_metrics(y, z)["acc"] == pytest.approx(4 / 6)  # default 0.5: .7 real and .3 fake wrong
    assert compute_metrics(y, z, threshold=0.65)["acc"] == pytest.approx(3 / 6)
    m = compute_metrics(y, z, threshold=0.2)  # only the .1 real counts as real: .4 and .7 wrong
    assert m["acc"] == pytest.approx(4 / 6) and m["threshold"] == 0.2
    # the threshold is on the probability and inclusive: p >= threshold is FAKE
    assert compute_metrics([1], [0.0], threshold=0.5)["acc"] == 1.0


def test_single_class_and_empty_inputs_do_not_crash():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no sklearn "only one class" warnings either
        m = compute_metrics([0, 0, 0], [-1.0, 0.5, -3.0])
        e = compute_metrics([], [])
    for k in ("auc", "ap", "eer"):
        assert math.isnan(m[k])
    assert m["acc"] == pytest.approx(2 / 3) and m["n"] == 3 and m["n_fake"] == 0
    assert math.isfinite(m["logloss"])
    assert e["n"] == 0 and all(math.isnan(e[k]) for k in ("auc", "ap", "eer", "acc", "logloss", "ece"))
    f = compute_metrics([1, 1], [2.0, -1.0])
    assert math.isnan(f["auc"]) and f["acc"] == 0.5


def test_extreme_logits_stay_finite():
    m = compute_metrics([0, 1, 0, 1], [-500.0, 500.0, 300.0, -300.0])
    assert math.isfinite(m["logloss"]) and m["logloss"] > 5
    assert m["auc"] == pytest.approx(0.75)


def test_video_level_groups():
    groups = ["b.mp4", "a.mp4", "b.mp4", "a.mp4", "c.mp4"]
    labels = [1, 0, 1, 0, 1]
    logits = [1.0, -2.0, 3.0, 0.0, -0.5]
    y, z, keys = video_level(groups, labels, logits)
    assert keys == ["b.mp4", "a.mp4", "c.mp4"]  # first-seen order
    np.testing.assert_array_equal(y, [1, 0, 1])
    np.testing.assert_allclose(z, [2.0, -1.0, -0.5])
    m = compute_metrics(y, z)
    assert m["n"] == 3 and m["auc"] == pytest.approx(1.0)
    y0, z0, k0 = video_level([], [], [])
    assert len(y0) == len(z0) == len(k0) == 0


# -- calibration ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def overconfident():
    """Labels drawn from sigmoid(z), logits reported as 4 z: over-confident by a factor of 4."""
    rng = np.random.default_rng(1)
    z = rng.normal(0, 1.5, 20000)
    y = (rng.random(len(z)) < _sigmoid(z)).astype(int)
    return 4 * z, y


def test_fit_temperature_recovers_the_scale(overconfident):
    logits, y = overconfident
    t = fit_temperature(logits, y)
    assert t == pytest.approx(4.0, rel=0.08)
    before = compute_metrics(y, logits)
    after = compute_metrics(y, logits / t)
    assert after["logloss"] < before["logloss"] - 0.05
    assert after["ece"] < before["ece"]
    assert after["auc"] == pytest.approx(before["auc"])  # scaling never changes the ranking
    # already calibrated logits keep T ~ 1, under-confident ones get T < 1
    assert fit_temperature(logits / 4, y) == pytest.approx(1.0, rel=0.08)
    assert fit_temperature(logits / 8, y) == pytest.approx(0.5, rel=0.08)


def test_fit_temperature_degenerate_inputs():
    assert fit_temperature([], []) == 1.0
    assert fit_temperature([1.0, 2.0], [1, 1]) == 1.0  # one class: nothing to fit
    t = fit_temperature([-5.0, 5.0], [0, 1])  # perfectly separated: as sharp as allowed, finite
    assert math.isfinite(t) and 0.05 <= t <= 20.0


@pytest.mark.parametrize("fpr", [0.0, 0.01, 0.05, 0.2])
def test_threshold_at_fpr(fpr):
    rng = np.random.default_rng(2)
    real = rng.normal(-1.0, 1.0, 1000)
    t = threshold_at_fpr(real, fpr)
    assert 0.0 < t <= 1.0 + 1e-6
    flagged = np.mean(_sigmoid(real) >= t)
    assert flagged <= fpr
    assert flagged >= fpr - 0.005  # and not needlessly strict
    # the same rule in compute_metrics: accuracy on the reals alone is 1 - flagged
    assert compute_metrics(np.zeros(1000), real, threshold=t)["acc"] == pytest.approx(1 - flagged)


def test_threshold_at_fpr_with_ties_and_few_samples():
    real = np.array([0.0, 0.0, 0.0, 1.0])  # three tied reals: flagging any flags all three
    assert np.mean(_sigmoid(real) >= threshold_at_fpr(real, 0.5)) <= 0.5
    assert np.mean(_sigmoid(real) >= threshold_at_fpr(real, 0.25)) <= 0.25
    assert threshold_at_fpr([], 0.05) == 0.5
    one = threshold_at_fpr([2.0], 0.05)
    assert _sigmoid(2.0) < one
