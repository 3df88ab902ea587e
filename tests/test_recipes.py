"""Retraining recipes: epochs per recipe, which weights each starts from, and that `kd` uses its teacher."""

import re

import pytest
import torch

from tasbench.errors import ConfigError
from tasbench.flops import macs
from tasbench.pruner import Pruned
from tasbench.recipes import RECIPES, Recipe, retrain
from tasbench.resnet import seeded_resnet

from helpers import random_data, tiny_arch

pytestmark = pytest.mark.usefixtures("one_thread")


def test_scratch_b_scales_epochs_by_the_flop_ratio():
    full, half = 40_813_194, 20_406_597
    assert Recipe("scratch-b", epochs=10).train_config(0, full, half).epochs == 20
    assert Recipe("scratch-b", epochs=10).train_config(0, full, 28_332_838).epochs == 14  # 10 * 1.4405 -> 14
    for name in ("finetune", "scratch", "kd"):
        assert Recipe(name, epochs=10).train_config(0, full, half).epochs == 10
    assert Recipe("kd").distill().alpha == 0.9 and Recipe("kd").distill().temperature == 4.0
    assert Recipe("scratch").distill() is None


@pytest.mark.parametrize(
    "bad,message",
    [
        ({"name": "rewind"}, "unknown recipe 'rewind'; allowed: finetune, scratch, scratch-b, kd"),
        ({"epochs": 0}, "epochs must be in [1, 10000], got 0"),
        ({"kd_alpha": 1.5}, "alpha must be in [0, 1] (KD alpha), got 1.5"),
    ],
)
def test_bad_recipes_are_named(bad, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        Recipe(**bad)


@pytest.mark.parametrize("name", RECIPES)
def test_each_recipe_trains_from_the_weights_it_promises(name):
    arch = tiny_arch()
    data = random_data()
    inherited = seeded_resnet(arch, 123)
    before = {k: v.clone() for k, v in inherited.state_dict().items()}
    teacher = seeded_resnet(arch, 7)
    recipe = Recipe(name, epochs=1, batch_size=32, warmup_epochs=0)
    model, metrics = retrain(
        Pruned(arch, inherited, {}),
        recipe,
        data,
        seed=0,
        unpruned_macs=2 * macs(arch),
        device=torch.device("cpu"),
        teacher=teacher,
    )
    assert (model is inherited) == (name == "finetune")
    assert metrics["epochs"] == (2 if name == "scratch-b" else 1) and len(metrics["history"]) == metrics["epochs"]
    if name == "finetune":
        assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_kd_without_a_teacher_is_refused():
    arch = tiny_arch()
    with pytest.raises(ConfigError, match="recipe 'kd' needs the unpruned teacher"):
        retrain(
            Pruned(arch, seeded_resnet(arch, 0), {}),
            Recipe("kd", epochs=1),
            random_data(),
            seed=0,
            unpruned_macs=macs(arch),
            device=torch.device("cpu"),
        )
