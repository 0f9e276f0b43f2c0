"""Leaderboard metrics: hand-computed cases, and map-boxes (ZFTurbo) as the reference VOC implementation."""

from __future__ import annotations

import numpy as np
import pytest

from dicomxray.labels import Prediction
from dicomxray.labels.metrics import rsna_map, siim_map, vinbig_map, voc_average_precision


def P(*groups):  # (class, score, x0, y0, x1, y1)...
    return Prediction(tuple(g[0] for g in groups), np.array([g[1] for g in groups], float),
                      np.array([g[2:] for g in groups], float).reshape(-1, 4))


def test_voc_all_point_interpolation_by_hand():
    # detections TP, FP, TP of 2 truths: recall .5 at precision 1, recall 1 at precision 2/3
    assert voc_average_precision(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_vinbig_map_by_hand():
    truth = {"a": P(("3", 1, 10, 10, 50, 50), ("3", 1, 100, 100, 150, 150)), "b": P(("14", 1, 0, 0, 1, 1))}
    pred = {"a": P(("3", 0.9, 11, 11, 50, 50), ("3", 0.8, 300, 300, 320, 320), ("3", 0.7, 100, 100, 150, 150)),
            "b": P(("14", 0.6, 0, 0, 1, 1), ("3", 0.95, 0, 0, 5, 5))}
    score = vinbig_map(pred, truth)
    # class 3: FP(.95) TP(.9) FP(.8) TP(.7): precision envelope .5 at recall 1 -> AP = .5 * .5 + .5 * .5
    assert score.per_class == {"3": pytest.approx(0.5), "14": pytest.approx(1.0)}
    assert score.value == pytest.approx(0.75)
    # a second detection of an already matched box is a false positive
    dup = {"a": P(("3", 0.9, 10, 10, 50, 50), ("3", 0.8, 10, 10, 50, 50)), "b": P(("14", 1, 0, 0, 1, 1))}
    assert vinbig_map(dup, truth).per_class["3"] == pytest.approx(0.5)


def test_siim_map_parts_by_hand():
    truth = {"s1_study": P(("typical", 1, 0, 0, 1, 1)), "s2_study": P(("negative", 1, 0, 0, 1, 1)),
             "i1_image": P(("opacity", 1, 10, 10, 60, 60)), "i2_image": P(("none", 1, 0, 0, 1, 1))}
    study = {k: P(*[(c, p, 0, 0, 1, 1) for c, p in zip(("negative", "typical", "indeterminate", "atypical"), ps, strict=True)])
             for k, ps in (("s1_study", (0.2, 0.7, 0.05, 0.05)), ("s2_study", (0.6, 0.3, 0.05, 0.05)))}
    pred = {**study, "i1_image": P(("opacity", 0.8, 10, 10, 60, 60)), "i2_image": P(("opacity", 0.9, 5, 5, 9, 9),
                                                                                     ("none", 0.5, 0, 0, 1, 1))}
    score = siim_map(pred, truth)
    assert score.parts["study"] == pytest.approx(1.0)  # each study's own class ranks first
    assert score.per_class["opacity"] == pytest.approx(0.5) and score.per_class["none"] == pytest.approx(1.0)
    assert score.parts["image"] == pytest.approx(0.75)
    assert score.value == pytest.approx((1 + 1 + 0.5 + 1) / 4)  # classes present: negative, typical, none, opacity
    with pytest.raises(ValueError, match="no truth"):
        siim_map({"zz_image": P(("none", 1, 0, 0, 1, 1))}, truth)


def test_rsna_map_by_hand():
    truth = {"a": P(("", 1, 0, 0, 100, 100)), "b": P(), "c": P(), "d": P(("", 1, 0, 0, 10, 10))}
    # a: IoU .6 -> TP at thresholds .40-.55 (4 of 8), else FP + FN = 1/3; b: nothing either side, left out;
    # c: no truth, a prediction -> 0; d: missed -> 0
    pred = {"a": P(("", 0.9, 0, 0, 100, 60)), "c": P(("", 0.5, 0, 0, 5, 5))}
    a = (4 * 1 + 4 * 0) / 8
    assert rsna_map(pred, truth).value == pytest.approx((a + 0 + 0) / 3)


def test_rsna_map_confidence_order_by_hand():
    truth = {"a": P(("", 1, 0, 0, 100, 100))}
    pred = {"a": P(("", 0.2, 0, 0, 100, 100), ("", 0.9, 0, 0, 100, 45))}
    # t=.40: conf box TP, exact box FP -> 1/2; t>=.45: conf box no (IoU .45 not > .45), exact box TP, conf FP -> 1/2
    assert rsna_map(pred, truth).value == pytest.approx(0.5)


def random_case(seed: int, classes: int):
    rng = np.random.default_rng(seed)
    truth, pred = {}, {}
    for i in range(40):
        g = []
        for _ in range(rng.integers(0, 4)):
            x, y = rng.uniform(0, 800, 2)
            g.append((str(rng.integers(0, classes)), 1.0, x, y, x + rng.uniform(30, 200), y + rng.uniform(30, 200)))
        truth[f"im{i}"] = P(*g) if g else P(("14", 1, 0, 0, 1, 1))
        d = []
        for c, _, x0, y0, x1, y1 in g:
            if rng.random() < 0.8:
                j = rng.normal(0, 0.15, 4) * (x1 - x0)
                d.append((c, float(rng.random()), x0 + j[0], y0 + j[1], x1 + j[2], y1 + j[3]))
        for _ in range(rng.integers(0, 3)):
            x, y = rng.uniform(0, 800, 2)
            d.append((str(rng.integers(0, classes)), float(rng.random()), x, y, x + 80, y + 60))
        if not g or rng.random() < 0.3:
            d.append(("14", float(rng.random()), 0, 0, 1, 1))
        pred[f"im{i}"] = P(*d) if d else P(("14", 0.5, 0, 0, 1, 1))
    return truth, pred


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("iou", [0.4, 0.5])
def test_voc_map_matches_map_boxes(seed, iou):
    map_boxes = pytest.importorskip("map_boxes")
    truth, pred = random_case(seed, 6)
    ann = [[k, c, b[0], b[2], b[1], b[3]] for k, p in truth.items() for c, b in zip(p.classes, p.boxes, strict=True)]
    det = []
    for k, p in pred.items():  # map-boxes matches within an image in input order: give it by confidence
        for i in np.argsort(-p.scores, kind="stable"):
            b = p.boxes[i]
            det.append([k, p.classes[i], p.scores[i], b[0], b[2], b[1], b[3]])
    ref, _ = map_boxes.mean_average_precision_for_boxes(np.array(ann, dtype=object), np.array(det, dtype=object),
                                                        iou_threshold=iou, verbose=False)
    ours = vinbig_map(pred, truth, iou_threshold=iou).value
    assert ours == pytest.approx(ref, abs=1e-6)
