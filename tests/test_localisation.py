"""Localisation metric: share of each attribute's attention inside its part mask (shapes)."""
import json

import pytest
import torch
from torch import nn

from zslab import ZSLabError
from zslab.cli import main
from zslab.data import load_dataset
from zslab.data.base import TensorImageDataset
from zslab.eval.localisation import attention_distribution, attention_in_part
from zslab.models import APN
from zslab.models.backbones import SmallCNN

SHAPES = dict(n_train_classes=6, n_val_classes=2, n_unseen_classes=3, train_per_class=6, val_seen_per_class=2,
              test_seen_per_class=2, unseen_per_class=6)


@pytest.fixture(scope="module")
def data():
    """Tiny shapes data whose test_unseen images carry their own part masks in the pixels:
    channel 0 = head mask, channel 1 = body mask (so a model can "see" the true masks)."""
    d = load_dataset("shapes", **SHAPES)
    ds = d.splits["test_unseen"]
    m = ds.extras["part_masks"]
    img = torch.zeros(len(ds), 3, *m.shape[2:], dtype=torch.uint8)
    img[:, :2] = m.to(torch.uint8) * 255
    d.splits["mask_images"] = TensorImageDataset(img, ds.labels, extras=ds.extras)
    return d


class MaskModel(nn.Module):
    """Attention of attribute k = the mask of its part (``mode="part"``), of the other part and
    the background (``"background"``), or a constant (``"uniform"``)."""

    def __init__(self, attribute_part, mode="part"):
        super().__init__()
        self.part = torch.tensor(attribute_part)
        self.mode = mode
        self.w = nn.Parameter(torch.zeros(()))  # gives the metric a device to follow

    def forward(self, images):
        masks = images[:, :2]                                     # (N, 2, H, W) in {0, 1}
        att = masks[:, self.part]
        if self.mode == "background":
            att = 1.0 - att
        elif self.mode == "uniform":
            att = torch.full_like(att, 3.0)
        return {"attention": att * 5.0 - 2.0}                     # an affine map, not already a distribution


def test_attention_equal_to_part_mask_scores_one(data):
    model = MaskModel(data.meta["attribute_part"])
    res = attention_in_part(model, data, "mask_images", progress=False)
    assert res["mean"] == pytest.approx(1.0, abs=1e-6) and res["peak"] == 1.0
    for v in res["per_attribute"].values():
        assert v["share"] == pytest.approx(1.0, abs=1e-6) and v["peak"] == 1.0
    assert 0 < res["chance"] < 0.5 and res["lift"] == pytest.approx(1 / res["chance"])
    assert set(res["per_part"]) == {"head", "body"}


def test_uniform_attention_scores_the_mask_area(data):
    res = attention_in_part(MaskModel(data.meta["attribute_part"], "uniform"), data, "mask_images", progress=False)
    ds = data.splits["mask_images"]
    masks, present = ds.extras["part_masks"].float(), ds.extras["attributes"] > 0.5
    part = torch.tensor(data.meta["attribute_part"])
    for k, name in enumerate(data.attribute_names):
        area = masks[:, part[k]].mean(dim=(1, 2))
        sel = present[:, k] & (area > 0)
        if sel.any():
            expected = float(area[sel].mean())
            assert res["per_attribute"][name]["share"] == pytest.approx(expected, abs=1e-5)
            assert res["per_attribute"][name]["chance"] == pytest.approx(expected, abs=1e-5)
            assert res["per_attribute"][name]["n"] == int(sel.sum())
        else:
            assert name not in res["per_attribute"]
    assert res["mean"] == pytest.approx(res["chance"], abs=1e-6)


def test_background_attention_scores_zero(data):
    res = attention_in_part(MaskModel(data.meta["attribute_part"], "background"), data, "mask_images",
                            progress=False)
    assert res["mean"] == pytest.approx(0.0, abs=1e-6) and res["peak"] == 0.0
    assert res["chance"] > 0


def test_real_apn_on_shapes_is_a_valid_share(data):
    torch.manual_seed(0)
    model = APN(SmallCNN(width=4), data.num_attributes)
    model.train()
    res = attention_in_part(model, data, max_images=10, progress=False)
    assert model.training                                        # mode restored
    assert res["n_images"] == 10 and 0 <= res["mean"] <= 1 and 0 < res["chance"] < 1 and 0 <= res["peak"] <= 1
    assert set(res["per_group"]) == set(data.meta["attribute_group"])


def test_distribution_and_errors(data):
    maps = torch.randn(2, 3, 4, 5)
    for norm in ("shift", "relu", "softmax"):
        d = attention_distribution(maps, norm)
        assert torch.allclose(d.flatten(2).sum(2), torch.ones(2, 3)) and (d >= 0).all()
    with pytest.raises(ZSLabError, match="normalise"):
        attention_distribution(maps, "max")
    plain = TensorImageDataset(torch.zeros(2, 3, 8, 8), torch.zeros(2))
    with pytest.raises(ZSLabError, match="part masks"):
        attention_in_part(MaskModel([0]), plain, progress=False)
    with pytest.raises(ZSLabError, match="attribute_part"):
        attention_in_part(MaskModel([0]), data.splits["mask_images"], progress=False)


def test_cli_eval_localisation(tmp_path, capsys):
    run = tmp_path / "run"
    tiny = [f"--set=data.{k}={v}" for k, v in SHAPES.items()]
    assert main(["train", "apn", "--out", str(run), "--set", "epochs=1", "--set", "model.width=4",
                 "--set", "progress=false"] + tiny) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--localisation"]) == 0
    printed = json.loads(capsys.readouterr().out)
    loc = json.loads((run / "metrics.json").read_text())["final"]["localisation"]
    assert loc["mean"] == pytest.approx(printed["localisation"]["mean"])
    assert 0 <= loc["mean"] <= 1 and 0 < loc["chance"] < 1 and loc["method"] == "apn"
    assert "zsl_t1" in json.loads((run / "metrics.json").read_text())["final"]
