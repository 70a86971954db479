"""`extract`: a supernet's sub-network as a standalone checkpoint that loads with no flags."""
from __future__ import annotations

import pytest
import torch

from gancompress.cli import main
from gancompress.compress.space import SearchSpace
from gancompress.compress.supernet import extract_file
from gancompress.errors import UserError
from gancompress.metrics.cost import count_macs
from gancompress.models.checkpoint import load_generator, save_generator
from gancompress.models.elastic import using_widths
from gancompress.models.resnet import ResnetGenerator, decode_config

SPACE = SearchSpace("tiny", ((8, 6, 4),) * 8, decode_config)


@pytest.fixture()
def supernet_file(tmp_path):
    torch.manual_seed(0)
    supernet = ResnetGenerator(ngf=8, n_blocks=3, conv="separable")
    for p in supernet.parameters():  # trained-looking weights, not the zero-bias init
        p.data.normal_(0, 0.2)
    path = tmp_path / "supernet.pth"
    save_generator(supernet, path, meta={"kind": "supernet", "space": SPACE.to_meta()})
    return supernet.eval(), path


@pytest.mark.parametrize("config", ["8_8_8_8_8_8_8_8", "4_6_4_8_4_6_4_6", "4_4_4_4_4_4_4_4"])
def test_extracted_equals_supernet_at_widths(tmp_path, supernet_file, config):
    supernet, path = supernet_file
    info = extract_file(path, config, tmp_path / "compact.pth")
    model = load_generator(tmp_path / "compact.pth")  # no flags: the widths travel in the file
    widths = SPACE.widths(SPACE.decode(config))
    assert model.max_widths == widths and info["config"] == config
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad(), using_widths(supernet, widths):
        assert (model(x) - supernet(x)).abs().max() < 1e-5
        assert count_macs(model, (1, 3, 32, 32)) == count_macs(supernet, (1, 3, 32, 32))
    assert info["macs_ref"] == count_macs(model, (1, 3, 256, 256)) and info["macs_size"] == [256, 256]


def test_extract_cli_and_errors(tmp_path, supernet_file, capsys):
    _, path = supernet_file
    out = tmp_path / "g.pth"
    assert main(["extract", str(path), "--config", "8_6_4_8_6_4_8_6", "--out", str(out)]) == 0
    assert "8_6_4_8_6_4_8_6" in capsys.readouterr().out
    stamp = out.read_bytes()
    assert main(["extract", str(path), "--config", "8_8_8_8_8_8_8_8", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == stamp
    assert main(["extract", str(path), "--config", "8_8_8_8_8_8_8_5", "--out",
                 str(tmp_path / "x.pth")]) == 2
    assert "allowed values in space tiny are 8, 6, 4" in capsys.readouterr().err
    save_generator(ResnetGenerator(ngf=8, n_blocks=3), tmp_path / "plain.pth")
    with pytest.raises(UserError, match="not a supernet"):
        extract_file(tmp_path / "plain.pth", "8_8_8_8_8_8_8_8", tmp_path / "y.pth")
    assert not (tmp_path / "x.pth").exists() and not (tmp_path / "y.pth").exists()
