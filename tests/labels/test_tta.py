"""Horizontal-flip test-time augmentation maps the mirrored pass's boxes back to the image."""

from __future__ import annotations

import numpy as np
import torch

from dicomxray.labels import BoxFusion, hflip, hflip_tta, unflip_boxes


def bright_box_detector(images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """A 'model' that boxes the bright pixels of each image exactly."""
    out = []
    for img in images:
        ys, xs = torch.nonzero(img[0] > 0, as_tuple=True)
        box = torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=torch.float32)
        out.append({"boxes": box, "scores": torch.tensor([0.8]), "labels": torch.tensor([1])})
    return out


def test_flipped_predictions_land_on_the_unflipped_object():
    images = torch.zeros(2, 1, 40, 64)
    images[0, :, 5:20, 3:11] = 1  # x 3..11, off-centre so a missed unflip shows
    images[1, :, 30:38, 50:60] = 1
    got = hflip_tta(bright_box_detector, images)
    assert got[0]["boxes"].tolist() == [[3, 5, 11, 20], [3, 5, 11, 20]] and got[0]["models"].tolist() == [0, 1]
    assert got[1]["boxes"].tolist() == [[50, 30, 60, 38], [50, 30, 60, 38]]
    fused = BoxFusion().fuse_scored(got[0]["boxes"], got[0]["labels"], scores=got[0]["scores"],
                                    models=got[0]["models"], image_size=(64, 40))
    assert np.allclose(fused.boxes, [[3, 5, 11, 20]]) and np.allclose(fused.scores, [0.8])


def test_unflip_and_hflip_are_inverses():
    boxes = np.array([[1.5, 2, 10, 20], [0, 0, 64, 40]])
    assert np.array_equal(unflip_boxes(unflip_boxes(boxes, 64), 64), boxes)
    assert unflip_boxes(boxes, 64).tolist()[0] == [54, 2, 62.5, 20]
    a = np.arange(12).reshape(1, 3, 4)
    assert np.array_equal(hflip(hflip(a)), a) and hflip(a)[0, 0].tolist() == [3, 2, 1, 0]
