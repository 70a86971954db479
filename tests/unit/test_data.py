"""Datasets: pix2pix / CycleGAN layouts, paired augmentation, determinism, errors, demo data."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gancompress.data import EpochBatchSampler, open_dataset
from gancompress.data.demo import TEST_PHOTOS, TRAIN_PHOTOS, write_demo_data
from gancompress.errors import UserError


def _noise(seed: int, h: int, w: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def make_aligned(root: Path, n: int = 4, side: int = 40, phases=("train", "test")) -> Path:
    """A | B files where B = 255 - A, so a correct pair satisfies target == -source exactly."""
    for phase in phases:
        (root / phase).mkdir(parents=True)
        for i in range(n):
            a = _noise(i + 10 * len(phase), side, side)
            Image.fromarray(np.concatenate([a, 255 - a], 1)).save(root / phase / f"{i}.png")
    return root


def make_unaligned(root: Path, counts=(("trainA", 3), ("trainB", 5), ("testA", 2), ("testB", 2))):
    for name, n in counts:
        (root / name).mkdir(parents=True)
        for i in range(n):
            image = Image.fromarray(_noise(len(name) * 31 + ord(name[-1]) + i, 36, 40))
            image.save(root / name / f"{name}_{i}.png")
    return root


def test_aligned_pairs_share_crop_and_flip(tmp_path):
    root = make_aligned(tmp_path / "d")
    # load_size == image size: no resampling, so the pairing is checked exactly.
    data = open_dataset(root, phase="train", load_size=40, crop_size=32, seed=3)
    assert len(data) == 4 and data.layout.mode == "aligned"
    flips = set()
    for epoch in range(6):
        item = data[(1, epoch)]
        assert item["source"].shape == (3, 32, 32) and item["target"].shape == (3, 32, 32)
        assert torch.allclose(item["target"], -item["source"], atol=1e-6)  # same crop and flip
        assert item["source"].min() >= -1 and item["source"].max() <= 1
        full = torch.from_numpy(_noise(1 + 50, 40, 40).transpose(2, 0, 1).copy())
        full = full.float() / 127.5 - 1
        found = [(y, x) for y in range(9) for x in range(9)
                 if torch.equal(full[:, y:y + 32, x:x + 32], item["source"])]
        flips.add(not found)  # a flipped crop is not found unflipped
    assert flips == {True, False}
    assert torch.equal(data[(2, 4)]["source"], data[(2, 4)]["source"])  # key -> same tensors
    assert not torch.equal(data[(2, 4)]["source"], data[(2, 5)]["source"])


def test_aligned_direction_eval_and_channels(tmp_path):
    root = make_aligned(tmp_path / "d")
    a2b = open_dataset(root, phase="test", load_size=32, crop_size=32)
    b2a = open_dataset(root, phase="test", direction="BtoA", load_size=32, crop_size=32)
    assert torch.equal(a2b[0]["source"], b2a[0]["target"])
    assert torch.equal(a2b[0]["source"], a2b[(0, 7)]["source"])  # test phase: no randomness
    gray = open_dataset(root, phase="test", in_channels=1, load_size=32, crop_size=32)
    assert gray[0]["source"].shape == (1, 32, 32) and gray[0]["target"].shape == (3, 32, 32)


def test_unaligned_single_and_val_folders(tmp_path):
    root = make_unaligned(tmp_path / "u", counts=(("trainA", 3), ("trainB", 5), ("valA", 2),
                                                  ("valB", 1)))
    data = open_dataset(root, load_size=36, crop_size=32)
    assert data.layout.mode == "unaligned" and len(data) == 5
    item = data[(4, 0)]
    assert "trainA_1" in item["source_path"] and "trainB" in item["target_path"]
    partners = {Path(data[(0, e)]["target_path"]).name for e in range(12)}
    assert len(partners) > 1  # unpaired partner drawn at random while training
    swapped = open_dataset(root, direction="BtoA", load_size=36, crop_size=32)
    assert "trainB" in swapped[(0, 0)]["source_path"]
    val = open_dataset(root, phase="val", load_size=32, crop_size=32)
    assert len(val) == 2 and "valB" in val[1]["target_path"]
    single = open_dataset(root / "trainB", mode="single", load_size=32, crop_size=32)
    assert len(single) == 5 and set(single[0]) == {"source", "source_path"}


def test_preprocess_modes_and_image_conversion(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(_noise(0, 50, 90)[:, :, 0]).save(folder / "gray.png")
    rgba = np.dstack([_noise(1, 50, 90), np.full((50, 90), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    none = open_dataset(folder, mode="single", preprocess="none")
    # rounded to multiples of 4 (half to even, as the reference): 50 x 90 -> 48 x 88
    assert [none[i]["source"].shape for i in range(2)] == [(3, 48, 88)] * 2
    width = open_dataset(folder, mode="single", preprocess="scale_width", load_size=64,
                         crop_size=32, phase="test")
    assert width[0]["source"].shape == (3, 32, 32)


def test_file_lists_and_cache(tmp_path):
    root = make_aligned(tmp_path / "d", n=5)
    (tmp_path / "keep.txt").write_text("# held in\n0.png\ntrain/3.png\n\n")
    data = open_dataset(root, file_list=tmp_path / "keep.txt", load_size=40, crop_size=32)
    assert sorted(Path(p).name for p in data.files) == ["0.png", "3.png"]
    rest = open_dataset(root, exclude_list=["0.png", "3.png"], load_size=40, crop_size=32)
    assert len(rest) == 3
    (tmp_path / "bad.txt").write_text("0.png\nmissing.png\n")
    with pytest.raises(UserError, match="missing.png"):
        open_dataset(root, file_list=tmp_path / "bad.txt")
    cached = open_dataset(root, cache=True, load_size=40, crop_size=32, phase="test")
    first = cached[0]["source"]
    (root / "test" / "0.png").unlink()  # served from memory now
    assert torch.equal(cached[0]["source"], first)


def test_layout_errors_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        open_dataset(tmp_path / "nope")
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(UserError, match="no images in .*train"):
        open_dataset(tmp_path / "empty")
    unaligned = make_unaligned(tmp_path / "u")
    with pytest.raises(UserError, match="unaligned layout.*data.mode=unaligned"):
        open_dataset(unaligned, mode="aligned")
    aligned = make_aligned(tmp_path / "a")
    with pytest.raises(UserError, match="aligned layout.*data.mode=aligned"):
        open_dataset(aligned, mode="unaligned")
    odd = tmp_path / "odd" / "train"
    odd.mkdir(parents=True)
    Image.fromarray(_noise(0, 20, 41)).save(odd / "odd.png")
    with pytest.raises(UserError, match="odd.png is 41x20.*even"):
        open_dataset(tmp_path / "odd")
    # A truncated file: the header reads, the pixels do not -> error names the file.
    good = aligned / "train" / "1.png"
    good.write_bytes(good.read_bytes()[:200])
    data = open_dataset(aligned, load_size=40, crop_size=32)
    with pytest.raises(UserError, match=r"1\.png.*(truncated|corrupt)"):
        data[1]


def test_sampler_resumes_mid_epoch_and_workers_agree(tmp_path):
    full = list(EpochBatchSampler(10, 3, seed=5, epoch=2))
    assert len(full) == 4 and sorted(i for b in full for i, _ in b) == list(range(10))
    assert list(EpochBatchSampler(10, 3, seed=5, epoch=2, start=2)) == full[2:]
    assert full != list(EpochBatchSampler(10, 3, seed=5, epoch=3))
    data = open_dataset(make_aligned(tmp_path / "d"), load_size=40, crop_size=32, seed=1)
    batches = []
    for workers in (0, 2):
        loader = torch.utils.data.DataLoader(data, batch_sampler=EpochBatchSampler(4, 2, 1, 0),
                                             num_workers=workers)
        batches.append(torch.cat([b["source"] for b in loader]))
    assert torch.equal(*batches)


def test_demo_data_is_real_disjoint_and_never_overwrites(tmp_path):
    out = tmp_path / "demo"
    summary = write_demo_data(out, size=32, n_train=7, n_test=3)
    assert summary["train"] == 7 and not set(TRAIN_PHOTOS) & set(TEST_PHOTOS)
    train = open_dataset(out, phase="train", load_size=32, crop_size=32)
    test = open_dataset(out, phase="test", load_size=32, crop_size=32)
    assert (len(train), len(test)) == (7, 3)
    train_sources = {Path(p).stem.split("_", 1)[1] for p in train.files}
    test_sources = {Path(p).stem.split("_", 1)[1] for p in test.files}
    assert train_sources <= set(TRAIN_PHOTOS) and test_sources <= set(TEST_PHOTOS)
    item = test[0]
    # colorize: A is the grayscale version of B (equal channels), B is a colour photo crop
    assert torch.equal(item["source"][0], item["source"][1])
    assert (item["target"][0] - item["target"][2]).abs().mean() > 0.02
    marker = out / "train" / "0000_astronaut.png"
    before = marker.read_bytes()
    with pytest.raises(UserError, match="not empty"):
        write_demo_data(out, n_train=2, n_test=1)
    assert marker.read_bytes() == before
