"""Config: presets carry the published recipes, overrides are typed and checked, JSON round trip."""
from __future__ import annotations

import json

import pytest

from gancompress.config import (
    PRESETS,
    Config,
    apply_overrides,
    diff,
    keys,
    preset,
    register_preset,
    validate,
)
from gancompress.errors import UserError


def test_presets_match_published_recipes():
    # docs/reference.md sec. 3
    e2s = preset("pix2pix-edges2shoes-r")
    assert (e2s.train.task, e2s.data.direction, e2s.loss.gan_mode) == ("pix2pix", "AtoB", "hinge")
    assert (e2s.model.disc_args["ndf"], e2s.loss.lambda_recon, e2s.train.batch_size) == (128, 100.0, 4)
    assert (e2s.train.epochs, e2s.train.epochs_decay) == (5, 15)
    city = preset("pix2pix-cityscapes")
    assert (city.data.direction, city.train.epochs, city.train.epochs_decay) == ("BtoA", 100, 150)
    assert preset("pix2pix-map2sat").loss.lambda_recon == 10.0
    h2z = preset("cyclegan-horse2zebra")
    assert (h2z.train.task, h2z.loss.gan_mode, h2z.model.disc_args["ndf"]) == ("cyclegan", "lsgan", 64)
    assert (h2z.loss.lambda_cycle, h2z.loss.lambda_identity, h2z.loss.pool_size) == (10.0, 0.5, 50)
    for cfg in (e2s, city, h2z):
        t = cfg.train
        assert (t.lr, t.beta1, t.beta2, t.seed) == (2e-4, 0.5, 0.999, 233)
        assert (cfg.data.load_size, cfg.data.crop_size, cfg.model.init_std) == (286, 256, 0.02)
        assert cfg.model.generator_args == {} and cfg.model.generator == ""
    assert "demo" in PRESETS and preset("demo").data.crop_size == 64


def test_overrides_are_type_converted():
    cfg = apply_overrides(Config(), ["train.lr=1e-4", "train.batch_size=8", "data.flip=false",
                                     "data.file_list=none", "model.conv=separable",
                                     "data.file_list=keep.txt", "loss.lambda_recon=5"])
    assert cfg.train.lr == 1e-4 and cfg.train.batch_size == 8 and cfg.data.flip is False
    assert cfg.model.generator_args["conv"] == "separable" and cfg.data.file_list == "keep.txt"
    assert cfg.loss.lambda_recon == 5.0 and isinstance(cfg.loss.lambda_recon, float)
    assert apply_overrides(cfg, ["data.file_list=None"]).data.file_list is None
    assert Config().train.lr == 2e-4  # overrides never mutate their input


@pytest.mark.parametrize("item, fragment", [
    ("train.learning_rate=1", "train.learning_rate"),
    ("optim.lr=1", "optim.lr"),
    ("train.batch_size=two", "expected an integer"),
    ("train.batch_size=1.5", "expected an integer"),
    ("data.flip=maybe", "true or false"),
    ("train.lr", "section.field=value"),
])
def test_bad_overrides_name_the_key(item, fragment):
    with pytest.raises(UserError) as err:
        apply_overrides(Config(), [item])
    assert fragment in str(err.value)
    if "unknown" in str(err.value):
        assert "batch_size" in str(err.value)  # lists the valid keys


def test_validation_of_choices_and_cross_field_rules():
    with pytest.raises(UserError, match="loss.gan_mode"):
        validate(apply_overrides(Config(), ["loss.gan_mode=wgan"]))
    with pytest.raises(UserError, match="load_size"):
        validate(apply_overrides(Config(), ["data.crop_size=300"]))
    with pytest.raises(UserError, match="multiple of 4"):
        validate(apply_overrides(Config(), ["data.crop_size=250"]))
    with pytest.raises(UserError, match="train.batch_size"):
        validate(apply_overrides(Config(), ["train.batch_size=0"]))
    with pytest.raises(UserError, match="unknown preset 'nope'.*demo"):
        preset("nope")


def test_json_round_trip_and_unknown_keys():
    cfg = apply_overrides(preset("cyclegan-horse2zebra"), ["data.root=/x", "train.amp=true"])
    text = cfg.to_json()
    assert Config.from_dict(json.loads(text)) == cfg
    assert len(keys()) == sum(len(v) for v in cfg.to_dict().values())
    with pytest.raises(UserError, match="unknown config key 'train.nope'"):
        Config.from_dict({"train": {"nope": 1}})
    with pytest.raises(UserError, match="unknown config section 'distil'"):
        Config.from_dict({"distil": {}})
    with pytest.raises(UserError, match="train.epochs.*integer"):
        Config.from_dict({"train": {"epochs": "many"}})


def test_diff_skips_runtime_keys():
    a = preset("demo")
    b = apply_overrides(a, ["train.device=cpu", "data.root=elsewhere", "train.log_every=7",
                            "train.lr=1e-3"])
    assert diff(a, b) == [("train.lr", a.train.lr, 1e-3)]
    assert len(diff(a, b, include_runtime=True)) == 4


def test_register_preset_with_base():
    register_preset("test-tiny", "for tests", {"model.ngf": 8}, base="demo")
    try:
        cfg = preset("test-tiny")
        assert cfg.model.generator_args["ngf"] == 8 and cfg.data.crop_size == preset("demo").data.crop_size
        with pytest.raises(UserError, match="model.width"):
            register_preset("test-bad", "typo", {"model.width": 8})
    finally:
        PRESETS.pop("test-tiny", None)


def test_legacy_flat_model_keys_still_load():
    """Run folders and checkpoints written before model.generator_args keep loading."""
    old = {"model": {"generator": "resnet", "ngf": 24, "n_blocks": 6, "conv": "dense",
                     "norm": "batch", "dropout": 0.0, "ndf": 32, "disc_layers": 2,
                     "disc_norm": "instance", "init_std": 0.02}}
    cfg = Config.from_dict(old)
    assert cfg.model.generator_args == {"ngf": 24, "n_blocks": 6, "norm": "batch"}
    assert cfg.model.disc_args == {"ndf": 32, "n_layers": 2}
    # flat overrides are aliases; sub-keys parse JSON scalars
    cfg = apply_overrides(Config(), ["model.ngf=16", "model.generator_args.conv=separable",
                                     "model.disc_args.n_layers=2"])
    assert cfg.model.generator_args == {"ngf": 16, "conv": "separable"}
    assert cfg.get("model.generator_args.ngf") == 16 and cfg.model.disc_args == {"n_layers": 2}
    assert Config.from_dict(cfg.to_dict()) == cfg


def test_unreadable_saved_config_is_an_error_naming_the_file():
    with pytest.raises(UserError, match="run/checkpoint.pt.*cannot be read"):
        Config.from_saved({"model": {"no_such_key": 1}}, source="run/checkpoint.pt")
    assert Config.from_saved(None, source="x") == Config()


def test_stage_epochs_are_one_mapping_and_the_flat_keys_of_earlier_versions_still_work():
    cfg = apply_overrides(Config(), ["compress.epochs.supernet=3,4", "compress.epochs.mobile=2+0",
                                     "compress.finetune_epochs=7",
                                     "compress.finetune_epochs_decay=0"])
    assert cfg.compress.epochs == {"mobile": [2, 0], "distill": [5, 15], "supernet": [3, 4],
                                   "finetune": [7, 0]}
    assert cfg.get("compress.finetune_epochs") == 7
    assert cfg.get("compress.epochs.supernet") == [3, 4]
    assert Config.from_dict(json.loads(cfg.to_json())) == cfg
    # a compress.json / checkpoint written before compress.epochs: the 8 flat fields
    old = {"compress": {"mobile_epochs": 1, "mobile_epochs_decay": 2, "distill_epochs": 3,
                        "distill_epochs_decay": 4, "supernet_epochs": 5,
                        "supernet_epochs_decay": 6, "finetune_epochs": 0,
                        "finetune_epochs_decay": 0, "budget": "1/2"}}
    loaded = Config.from_dict(old)
    assert loaded.compress.epochs == {"mobile": [1, 2], "distill": [3, 4], "supernet": [5, 6],
                                      "finetune": [0, 0]}
    assert loaded.compress.budget == "1/2"
    # a mapping given whole keeps the stages it does not name
    merged = Config.from_dict({"compress": {"epochs": {"supernet": [1, 0]}}})
    assert merged.compress.epochs["supernet"] == [1, 0]
    assert merged.compress.epochs["finetune"] == Config().compress.epochs["finetune"]
    assert preset("compress-demo").compress.epochs["supernet"] == [10, 15]


@pytest.mark.parametrize("item, message", [
    ("compress.epochs.supernt=1,2", "unknown config key compress.epochs.supernt"),
    ("compress.epochs.supernet=10", "expected two integers"),
    ("compress.epochs.supernet=a,b", "expected two integers"),
    ("compress.supernet_epochs=nan", "compress.supernet_epochs: expected an integer"),
])
def test_bad_stage_epochs_are_refused_at_the_override(item, message):
    with pytest.raises(UserError, match=message):
        apply_overrides(Config(), [item])


@pytest.mark.parametrize("item", ["compress.epochs.supernet=-1,2", "compress.supernet_epochs=-1",
                                  "compress.finetune_epochs_decay=1e20"])
def test_stage_epochs_out_of_range_are_refused_by_validate(item):
    with pytest.raises(UserError, match="compress.epochs.* out of range"):
        validate(apply_overrides(Config(), [item]))


def test_evolution_settings_are_one_mapping_and_the_flat_keys_still_work():
    cfg = apply_overrides(Config(), ["compress.generations=2", "compress.evolution.population=6",
                                     "compress.mutate_prob=0.5"])
    assert cfg.compress.evolution == {"population": 6, "parents": 25, "mutants": 50,
                                      "crossovers": 50, "mutate_prob": 0.5, "generations": 2}
    assert cfg.get("compress.generations") == 2
    old = Config.from_dict({"compress": {"population": 7, "generations": 3, "mutate_prob": 1}})
    assert old.compress.evolution["population"] == 7 and old.compress.evolution["generations"] == 3
    assert old.compress.evolution["mutate_prob"] == 1.0
    assert isinstance(old.compress.evolution["mutate_prob"], float)
    with pytest.raises(UserError, match="did you mean compress.evolution.generations"):
        apply_overrides(Config(), ["compress.generation=2"])


@pytest.mark.parametrize("item, message", [
    ("compress.evolution.mutate_prob=2", "out of range"),
    ("compress.parents=0", "out of range"),
    ("compress.population=nan", "expected an integer"),
    ("compress.generations=1e20", "out of range"),
    ("compress.evolution.mutate_prob=inf", "out of range"),
    ("compress.evolution.elitism=1", "unknown config key compress.evolution.elitism"),
])
def test_bad_evolution_settings_are_refused(item, message):
    with pytest.raises(UserError, match=message):
        apply_overrides(Config(), [item])


def test_validate_checks_mapping_entries_set_from_code():
    cfg = Config()
    cfg.compress.evolution["parents"] = 0
    with pytest.raises(UserError, match="compress.evolution.parents = 0 is out of range"):
        validate(cfg)
    cfg = Config()
    cfg.compress.epochs["supernet"] = [1]
    with pytest.raises(UserError, match="expected two integers"):
        validate(cfg)
    cfg = Config()
    cfg.compress.epochs = {"supernet": [1, 0]}
    with pytest.raises(UserError, match="compress.epochs lacks mobile, distill, finetune"):
        validate(cfg)


def test_config_has_one_field_per_section_in_order():
    """The key engine (overrides.py) reads SECTIONS, Config (schema.py) declares the fields."""
    import dataclasses

    from gancompress.config import SECTIONS
    assert [(f.name, f.type) for f in dataclasses.fields(Config)] == [
        (name, cls.__name__) for name, cls in SECTIONS.items()]
