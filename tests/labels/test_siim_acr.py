"""SIIM-ACR Pneumothorax: the competition's run-length code both ways, the adapter, its submission and Dice.

Every image here is non-square (48 rows x 80 columns), so a transposed or 1024-assuming decoder fails.
"""

from __future__ import annotations

import numpy as np
import pytest

from dicomxray import LabelFormatError, SourceFileNotFoundError
from dicomxray.labels import (
    MaskSource,
    SiimAcrPneumothorax,
    read_siim_acr_submission,
    siim_acr_mask,
    siim_acr_rle,
    write_submission,
)
from dicomxray.labels.metrics import siim_acr_dice, siim_acr_truth
from dicomxray.testing import write_dicom

H, W = 48, 80


def reference_rle2mask(rle: str, width: int, height: int) -> np.ndarray:
    """The competition's ``mask_functions.rle2mask`` (it returns a width x height array; callers transpose)."""
    mask = np.zeros(width * height)
    array = np.asarray([int(x) for x in rle.split()])
    starts, lengths = array[0::2], array[1::2]
    current = 0
    for index, start in enumerate(starts):
        current += start
        mask[current:current + lengths[index]] = 255
        current += lengths[index]
    return mask.reshape(width, height)


def reference_mask2rle(img: np.ndarray, width: int, height: int) -> str:
    """The competition's ``mask_functions.mask2rle`` (``img`` is width x height, 255 = positive)."""
    rle: list[str] = []
    last, pixel, start, length = 0, 0, -1, 0
    for x in range(width):
        for y in range(height):
            color = img[x][y]
            if color != last:
                if color == 255:
                    start, length = pixel, 1
                else:
                    rle += [str(start), str(length)]
                    start, length, pixel = -1, 0, 0
            elif start > -1:
                length += 1
            last = color
            pixel += 1
    return " ".join(rle)


def random_mask(seed: int, last_pixel: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = np.zeros((H, W), np.uint8)
    for _ in range(3):
        y, x = rng.integers(0, H - 10), rng.integers(0, W - 10)
        mask[y:y + rng.integers(2, 10), x:x + rng.integers(2, 10)] = 1
    mask[-1, -1] = 1 if last_pixel else 0
    return mask


def test_the_code_is_column_major_zero_based_and_relative():
    mask = np.zeros((H, W), np.uint8)
    mask[1, 3] = 1                      # pixel index x * H + y = 3 * 48 + 1 = 145
    mask[2:4, 3] = 1                    # 146, 147: one run of 3 from 145
    mask[0, 5] = 1                      # 240: a gap of 240 - 148 = 92 after that run's end
    assert siim_acr_rle(mask) == "145 3 92 1"
    assert np.array_equal(siim_acr_mask("145 3 92 1", H, W), mask)
    assert siim_acr_mask("-1", H, W).shape == (H, W) and not siim_acr_mask("-1", H, W).any()
    assert siim_acr_rle(np.zeros((H, W))) == "-1"


@pytest.mark.parametrize("seed", range(4))
def test_ours_agree_with_the_competitions_functions(seed):
    mask = random_mask(seed)
    theirs = reference_mask2rle(mask.T * 255, W, H)
    assert siim_acr_rle(mask) == theirs
    assert np.array_equal(siim_acr_mask(theirs, H, W), (reference_rle2mask(theirs, W, H).T > 0).astype(np.uint8))
    assert not np.array_equal(siim_acr_mask(theirs, W, H).T, mask)   # a decoder with the sizes swapped is wrong


def test_a_run_touching_the_last_pixel_is_kept():
    mask = random_mask(7, last_pixel=True)
    lost = reference_mask2rle(mask.T * 255, W, H)
    assert not np.array_equal(siim_acr_mask(lost, H, W), mask)       # the competition's encoder drops it
    assert np.array_equal(siim_acr_mask(siim_acr_rle(mask), H, W), mask)
    full = np.ones((H, W), np.uint8)
    assert siim_acr_rle(full) == f"0 {H * W}"


@pytest.mark.parametrize("bad", ["", "1 2 3", "a b", "5 0", "-3 2", f"0 {H * W + 1}"])
def test_malformed_or_oversized_runs_are_refused(bad):
    with pytest.raises(ValueError):
        siim_acr_mask(bad, H, W)


def make_folder(root, header="ImageId, EncodedPixels", name="train-rle.csv"):
    masks = {"1.2.3.1": [random_mask(1), random_mask(2)], "1.2.3.2": [], "1.2.3.3": [random_mask(3, last_pixel=True)]}
    lines = [header]
    for i, (key, planes) in enumerate(masks.items()):
        write_dicom(root / "dicom-images-train" / f"1.2.{i}" / f"1.2.{i}.9" / f"{key}.dcm",
                    np.zeros((H, W), np.uint8), sop_uid=key)
        lines += [f"{key}, {siim_acr_rle(m)}" for m in planes] or [f"{key}, -1"]
    (root / name).write_text("\n".join(lines) + "\n")
    return masks


def test_the_adapter_keeps_the_strings_and_decodes_at_the_images_size(tmp_path):
    masks = make_folder(tmp_path)
    labels = SiimAcrPneumothorax(tmp_path)
    assert labels.keys() == set(masks)
    two = labels.target("1.2.3.1")
    assert isinstance(two.masks, MaskSource) and two.image_label == 1 and two.study_positive and two.mask_label == 1
    union = two.masks.instances(H, W)
    assert union.shape == (1, H, W) and union.dtype == np.uint8
    assert np.array_equal(union[0], masks["1.2.3.1"][0] | masks["1.2.3.1"][1])
    assert labels.target("1.2.3.2").masks.instances(H, W).shape == (0, H, W)   # ' -1': no pneumothorax
    assert labels.target("1.2.3.2").image_label == 0
    each = SiimAcrPneumothorax(tmp_path, instances=True).target("1.2.3.1").masks.instances(H, W)
    assert each.shape == (2, H, W) and np.array_equal(each[1], masks["1.2.3.1"][1])
    assert labels.image_size("1.2.3.3") == (W, H)
    with pytest.raises(ValueError, match="1.2.3.3"):
        labels.target("1.2.3.3").masks.instances(W - 40, H)               # a smaller image cannot hold the runs


def test_stage_2_file_without_the_space(tmp_path):
    masks = make_folder(tmp_path, header="ImageId,EncodedPixels", name="stage_2_train.csv")
    labels = SiimAcrPneumothorax(tmp_path)
    assert np.array_equal(labels.mask("1.2.3.3", H, W), masks["1.2.3.3"][0])


def test_bad_label_files_name_file_row_and_column(tmp_path):
    with pytest.raises(SourceFileNotFoundError, match="train-rle.csv"):
        SiimAcrPneumothorax(tmp_path)
    (tmp_path / "train-rle.csv").write_text("ImageId, EncodedPixels\na, -1\nb, 3 4 5\n")
    with pytest.raises(LabelFormatError, match=r"train-rle.csv:3: column 'EncodedPixels'.*pairs"):
        SiimAcrPneumothorax(tmp_path)


def test_dice_and_its_truth(tmp_path):
    masks = make_folder(tmp_path)
    labels = SiimAcrPneumothorax(tmp_path)
    truth = siim_acr_truth(labels)
    assert {k: v.shape for k, v in truth.items()} == {k: (H, W) for k in masks}
    assert siim_acr_dice(truth, truth).value == 1.0            # the empty image scores 1 too
    pred = dict(truth)
    pred["1.2.3.2"] = np.ones((H, W), bool)                   # empty truth, some prediction: 0
    half = truth["1.2.3.3"].copy()
    ys, xs = np.nonzero(half)
    half[ys[: len(ys) // 2], xs[: len(xs) // 2]] = False
    pred["1.2.3.3"] = half
    expected = (1 + 0 + 2 * half.sum() / (half.sum() + truth["1.2.3.3"].sum())) / 3
    assert siim_acr_dice(pred, truth).value == pytest.approx(expected)
    rles = {k: siim_acr_rle(v) for k, v in pred.items()}      # a submission's strings, decoded at the truth's size
    assert siim_acr_dice(rles, truth).value == pytest.approx(expected)
    with pytest.raises(ValueError, match="no prediction"):
        siim_acr_dice({}, truth)
    with pytest.raises(ValueError, match="truth of"):
        siim_acr_dice({**truth, "1.2.3.2": np.zeros((W, H), bool)}, truth)


def test_the_submission_is_checked_before_it_is_written(tmp_path):
    masks = make_folder(tmp_path)
    keys = sorted(masks)
    sizes = {k: (W, H) for k in keys}
    union = {k: (np.bitwise_or.reduce(v) if v else np.zeros((H, W), np.uint8)) for k, v in masks.items()}
    rows = [(k, siim_acr_rle(union[k])) for k in keys]
    out = tmp_path / "sub" / "submission.csv"
    bad_cases = [
        (rows[1:], "1 missing"),
        (rows + rows[:1], "duplicate"),
        ([(keys[0], ""), *rows[1:]], "write '-1'"),
        ([(keys[0], None), *rows[1:]], "write '-1'"),
        ([(keys[0], "1 2 3"), *rows[1:]], "pairs"),
        ([(keys[0], f"0 {H * W + 1}"), *rows[1:]], "outside the 80 x 48 image"),
        ([(keys[0], np.zeros((W, H))), *rows[1:]], "map it back"),
    ]
    for bad, message in bad_cases:
        with pytest.raises(ValueError, match=message):
            write_submission(bad, out, competition="siim-acr", expected_ids=keys, image_sizes=sizes)
        assert not out.exists()
    with pytest.raises(ValueError, match="do not apply|one mask"):
        write_submission(rows, out, competition="siim-acr", expected_ids=keys, top_k=1)
    arrays = [(k, union[k]) for k in keys]                    # masks are encoded by the writer
    write_submission(arrays, out, competition="siim-acr", expected_ids=keys, image_sizes=sizes)
    assert out.read_text().splitlines()[0] == "ImageId,EncodedPixels"
    back = read_siim_acr_submission(out)
    assert back == dict(rows) and back["1.2.3.2"] == "-1"
    assert np.array_equal(siim_acr_mask(back["1.2.3.3"], H, W), masks["1.2.3.3"][0])   # the last pixel survives


def test_the_submission_from_a_frame(tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"ImageId": ["a", "b"], "EncodedPixels": ["-1", "3 4"]})
    out = write_submission(frame, tmp_path / "s.csv", competition="siim-acr", expected_ids=["a", "b"])
    assert read_siim_acr_submission(out) == {"a": "-1", "b": "3 4"}


def test_the_labels_pickle_small_for_dataloader_workers(tmp_path):
    import pickle

    make_folder(tmp_path)
    labels = SiimAcrPneumothorax(tmp_path)
    back = pickle.loads(pickle.dumps(labels))
    assert np.array_equal(back.mask("1.2.3.1", H, W), labels.mask("1.2.3.1", H, W))
    assert len(pickle.dumps(labels.target("1.2.3.1"))) < 2_000     # strings, not H x W arrays
