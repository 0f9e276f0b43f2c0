"""BoxFusion against ZFTurbo's ensemble_boxes, on VinBigData-like annotations (3 readers, every score 1)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from dicomxray.errors import LabelWarning
from dicomxray.labels import BoxFusion

W, H = 2000, 2400


def vinbig_like(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image: 1-4 findings, each drawn by 1-3 of 3 radiologists with jitter; some boxes cross the border."""
    boxes, labels, readers = [], [], []
    for _ in range(rng.integers(1, 5)):
        cls = int(rng.integers(0, 4))
        x0, y0 = rng.uniform(-50, W - 300), rng.uniform(-50, H - 300)
        w, h = rng.uniform(80, 600, 2)
        for r in rng.choice(3, size=rng.integers(1, 4), replace=False):
            j = rng.normal(0, 0.12, 4) * [w, h, w, h]
            boxes.append([x0 + j[0], y0 + j[1], x0 + w + j[2], y0 + h + j[3]])
            labels.append(cls)
            readers.append(f"R{r}")
    return np.array(boxes), np.array(labels), np.array(readers)


def ours_vs_reference(method: str, iou: float, seed: int, **options: object) -> tuple[int, float]:
    eb = pytest.importorskip("ensemble_boxes")
    rng = np.random.default_rng(seed)
    size = np.array([W, H, W, H], np.float64)
    differ, worst = 0, 0.0
    for _ in range(60):
        b, lab, who = vinbig_like(rng)
        scores = np.ones(len(b)) if method == "wbf" and seed % 2 == 0 else rng.choice([0.3, 0.6, 1.0], len(b))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if method == "wbf":
                rb, rs, rl = eb.weighted_boxes_fusion([(b / size).tolist()], [scores.tolist()], [lab.tolist()],
                                                      iou_thr=iou, **options)
            else:
                rb, rs, rl = eb.nms([b / size], [scores], [lab], iou_thr=iou)
        got = BoxFusion(method=method, iou_threshold=iou, **options).fuse_scored(  # type: ignore[arg-type]
            b, lab, scores=scores, readers=who, image_size=(W, H))
        same = got.boxes.shape == (len(rb), 4) and np.array_equal(got.labels, np.asarray(rl, np.int64)) \
            and np.allclose(got.scores, rs, rtol=0, atol=1e-12) and np.allclose(got.boxes, rb * size, rtol=0, atol=1e-6)
        if not same:
            differ += 1
            if got.boxes.shape == (len(rb), 4):
                worst = max(worst, float(np.abs(got.boxes - rb * size).max()))
    return differ, worst


@pytest.mark.parametrize("iou", [0.4, 0.5, 0.55])
@pytest.mark.parametrize("seed", [0, 1])
def test_wbf_is_ensemble_boxes(iou, seed):
    assert ours_vs_reference("wbf", iou, seed) == (0, 0.0)


@pytest.mark.parametrize("options", [
    pytest.param({"conf_type": "max"}, id="max"),
    pytest.param({"conf_type": "box_and_model_avg"}, id="box_and_model_avg"),
    pytest.param({"skip_box_thr": 0.5}, id="skip"),
])
def test_wbf_options_are_ensemble_boxes(options):
    assert ours_vs_reference("wbf", 0.5, 1, **options) == (0, 0.0)


@pytest.mark.parametrize("iou", [0.4, 0.5])
def test_nms_is_ensemble_boxes(iou):
    assert ours_vs_reference("nms", iou, 0) == (0, 0.0)


def test_wbf_with_model_weights_is_ensemble_boxes():
    eb = pytest.importorskip("ensemble_boxes")
    b1 = [[0.1, 0.1, 0.5, 0.5], [0.6, 0.6, 0.9, 0.8]]
    b2 = [[0.12, 0.1, 0.52, 0.48], [0.0, 0.0, 0.2, 0.2]]
    s1, s2 = [0.9, 0.5], [0.7, 0.4]
    rb, rs, rl = eb.weighted_boxes_fusion([b1, b2], [s1, s2], [[1, 1], [1, 2]], weights=[2, 1], iou_thr=0.5)
    got = BoxFusion(weights=(2.0, 1.0)).fuse_scored(b1 + b2, [1, 1, 1, 2], scores=s1 + s2, models=[0, 0, 1, 1])
    assert np.allclose(got.boxes, rb, atol=1e-7) and np.allclose(got.scores, rs) and got.labels.tolist() == rl.tolist()


def test_clipping_and_zero_area_as_ensemble_boxes():
    # a box over the border is clipped to the image; one that is a line after clipping is dropped
    got = BoxFusion().fuse_scored([[-20, 10, 50, 60], [110, 10, 130, 60]], [1, 1], image_size=(100, 100))
    assert got.boxes.tolist() == [[0, 10, 50, 60]]
    got = BoxFusion().fuse_scored([[-20, 10, 50, 60], [10, 10, 10, 60]], [1, 1])
    assert got.boxes.tolist() == [[0, 10, 50, 60]]


def test_min_votes_without_readers_warns():
    with pytest.warns(LabelWarning, match="rad_id"):
        BoxFusion(min_votes=2).fuse([[0, 0, 10, 10], [0, 0, 10, 11]], [1, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BoxFusion(min_votes=1).fuse([[0, 0, 10, 10]], [1])


def test_a_chain_of_tied_boxes_fuses_as_ensemble_boxes():
    # all scores 1 (VinBigData): A overlaps B, B overlaps C, A and C do not; the order decides the clusters
    eb = pytest.importorskip("ensemble_boxes")
    chain = [[0.10, 0.10, 0.30, 0.30], [0.16, 0.10, 0.36, 0.30], [0.24, 0.10, 0.44, 0.30], [0.30, 0.10, 0.50, 0.30]]
    for boxes in (chain, chain[::-1], [chain[i] for i in (2, 0, 3, 1)]):
        rb, _, _ = eb.weighted_boxes_fusion([boxes], [[1.0] * 4], [[0] * 4], iou_thr=0.4)
        got, _, _ = BoxFusion(iou_threshold=0.4).fuse(boxes, [0] * 4)
        assert got.shape == rb.shape
        assert np.allclose(np.array(sorted(got.tolist())), np.array(sorted(rb.tolist())), atol=1e-6)
