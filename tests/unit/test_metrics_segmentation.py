"""Cityscapes mIoU: confusion matrix and IoU on hand-made label maps, the DRN input
normalisation, label files, and the DRN-D-105 pipeline on random published-layout weights."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from helpers import random_drn_file

from gancompress.errors import UserError
from gancompress.metrics.segmentation import (
    CITYSCAPES_MEAN,
    CITYSCAPES_STD,
    MIoUScorer,
    confusion_matrix,
    drn_input,
    find_label_files,
    iou_per_class,
    load_drn,
    match_key,
    mean_iou,
    read_label,
    segment,
)


def test_miou_on_hand_made_label_maps():
    label = np.array([[0, 0, 1, 1],
                      [0, 2, 255, 1],
                      [3, 3, 3, 200]])
    pred = np.array([[0, 1, 1, 1],
                     [0, 2, 2, 0],
                     [3, 3, 4, 4]])
    hist = confusion_matrix(pred, label, num_classes=5)
    assert hist.sum() == 10  # 255 and 200 (outside 0..4) are not counted
    assert hist[0, 0] == 2 and hist[0, 1] == 1 and hist[1, 0] == 1 and hist[3, 4] == 1
    # class 0: TP 2, FP 1 (a 1 predicted as 0), FN 1 -> 2/4; class 1: TP 2, FP 1, FN 1 -> 2/4;
    # class 2: 1/1; class 3: TP 2, FN 1 -> 2/3; class 4: predicted once, never true -> 0/1
    ious = iou_per_class(hist)
    np.testing.assert_allclose(ious, [0.5, 0.5, 1.0, 2 / 3, 0.0])
    assert mean_iou(hist) == pytest.approx(100 * (0.5 + 0.5 + 1 + 2 / 3 + 0) / 5)


def test_absent_classes_are_left_out_of_the_mean():
    label = np.array([0, 0, 1, 1])
    hist = confusion_matrix(np.array([0, 0, 1, 0]), label, num_classes=19)
    ious = iou_per_class(hist)
    assert np.isnan(ious[2:]).all()  # classes 2..18: neither true nor predicted
    assert mean_iou(hist) == pytest.approx(100 * (2 / 3 + 1 / 2) / 2)
    with pytest.raises(UserError, match="no labelled pixels"):
        mean_iou(confusion_matrix(np.zeros(4), np.full(4, 255)))


def test_drn_input_is_uint8_then_cityscapes_normalisation():
    x = torch.tensor([-1.0, 0.0, 1.0, 0.5]).view(1, 1, 1, 4).expand(1, 3, 2, 4)
    out = drn_input(x)
    u8 = torch.tensor([0, 127, 255, 191], dtype=torch.float32)  # 191.25 truncated
    for c in range(3):
        expected = (u8 / 255 - CITYSCAPES_MEAN[c]) / CITYSCAPES_STD[c]
        torch.testing.assert_close(out[0, c, 0], expected)
    assert CITYSCAPES_MEAN[0] == pytest.approx(0.2901, abs=1e-4)
    assert CITYSCAPES_STD[2] == pytest.approx(0.1845, abs=1e-4)


def test_label_files_are_matched_by_name_and_validated(tmp_path):
    city = tmp_path / "gtFine" / "val" / "frankfurt"
    city.mkdir(parents=True)
    good = np.array([[0, 18], [255, 7]], dtype=np.uint8)
    Image.fromarray(good).save(city / "frankfurt_000000_000294_gtFine_trainIds.png")
    Image.fromarray(good + 7).save(city / "frankfurt_000000_000294_gtFine_labelIds.png")
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(city / "frankfurt_000000_000294_gtFine_color.png")
    found = find_label_files(tmp_path)
    assert list(found) == ["frankfurt_000000_000294"]  # only the trainIds file is used
    assert match_key("x/frankfurt_000000_000294_leftImg8bit.png") == "frankfurt_000000_000294"
    assert read_label(found["frankfurt_000000_000294"]).tolist() == [[0, 18], [255, 7]]
    with pytest.raises(UserError, match="labelIds"):
        read_label(city / "frankfurt_000000_000294_gtFine_labelIds.png")
    with pytest.raises(UserError, match="single-channel"):
        read_label(city / "frankfurt_000000_000294_gtFine_color.png")


def test_drn_pipeline_resizes_to_the_output_size_and_scores():
    """Random DRN-D-105 weights (published layout, `module.` prefix) through the real lookup;
    the classifier is then forced to predict class 3 everywhere so the score is known."""
    model, record = load_drn(weights=random_drn_file())
    assert len(record.sha256) == 64
    images = torch.rand(2, 3, 32, 48) * 2 - 1
    pred = segment(model, images, out_size=(16, 40))
    assert pred.shape == (2, 16, 40) and pred.dtype == torch.int64
    assert 0 <= int(pred.min()) and int(pred.max()) < 19
    with torch.no_grad():
        model.seg.weight.zero_()
        model.seg.bias.zero_()
        model.seg.bias[3] = 5.0
    scorer = MIoUScorer(model=model, record=record, out_size=(16, 40))
    labels = torch.full((2, 16, 40), 3, dtype=torch.int64)
    labels[:, :, 20:] = 5  # half the pixels are class 5, predicted as 3
    labels[1, 0, :] = 255
    value = scorer.score([(images, labels)])
    # IoU(3) = TP / (TP + FP) = 0.5 (rows of 255 ignored on both halves alike), IoU(5) = 0
    assert value == pytest.approx(25.0)
    assert scorer.count == 2 and scorer.protocol()["weights"]["sha256"] == record.sha256
    with pytest.raises(UserError, match="label maps are 20x10"):
        scorer.update(images, torch.zeros(2, 10, 20, dtype=torch.int64))
