"""LAAT embedding models: Conv4-64/512, ResNet-12, PreActResNet-18 via build_embedding_model."""
import pytest
import torch
from torch import nn

from zslab import ZSLabError
from zslab.models import EMBEDDING_MODELS, build_embedding_model

NAMES = ["conv4-64", "conv4-512", "resnet12", "preact-resnet18"]


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def trunk_params(model):
    return n_params(model) - n_params(model.head)


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {n: build_embedding_model(n, out_dim=24) for n in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_bias_free_head(models, name):
    model = models[name].eval()
    assert isinstance(model.head, nn.Linear) and model.head.bias is None
    assert model.head.out_features == 24
    with torch.no_grad():
        for side in (32, 84):
            x = torch.rand(1, 3, side, side)
            out = model(x)
            assert out.shape == (1, 24) and torch.isfinite(out).all()
            # forward = bias-free head of the pooled features: linear, no offset
            feats = model.embed(x)
            assert feats.shape == (1, model.head.in_features)
            torch.testing.assert_close(out, feats @ model.head.weight.T)


def test_parameter_counts_in_published_ballpark(models):
    # ResNet-12 64-160-320-640 (MetaOptNet / RFS): ~12.4M; PreActResNet-18: ~11.17M (+ 5,130 for a
    # 10-class fc in the CIFAR literature); Conv4-64: ~113k; Conv4-512: ~7.1M (trunks, without the head)
    assert trunk_params(models["resnet12"]) == pytest.approx(12.4e6, rel=0.01)
    assert trunk_params(models["preact-resnet18"]) == pytest.approx(11.17e6, rel=0.01)
    assert trunk_params(models["conv4-64"]) == pytest.approx(113e3, rel=0.02)
    assert trunk_params(models["conv4-512"]) == pytest.approx(7.1e6, rel=0.01)
    assert models["resnet12"].head.in_features == 640 and models["preact-resnet18"].head.in_features == 512


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_input_and_normalisation_inside(models, name):
    model = models[name].eval()
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    model(x).pow(2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)
    # the model normalises internally: a constant image at the mean maps to a zero normalised input,
    # so shifting the normalisation constants changes the output (it is not applied outside)
    norm = getattr(model, "normalize", None)
    mean = norm.mean if norm is not None else model.mean
    assert torch.allclose(mean.flatten(), torch.full((3,), 0.5))
    with torch.no_grad():
        y0 = model(torch.full((1, 3, 32, 32), 0.5))
        mean.add_(0.1)
        y1 = model(torch.full((1, 3, 32, 32), 0.5))
        mean.sub_(0.1)
    assert (y0 - y1).abs().max() > 1e-6


def test_device_and_dtype_follow_the_model(models):
    model = models["resnet12"].eval().double()
    try:
        out = model(torch.rand(1, 3, 32, 32, dtype=torch.float64))
        assert out.dtype == torch.float64
    finally:
        model.float()


def test_factory_errors():
    with pytest.raises(ZSLabError, match="conv4-64, conv4-512, resnet12, preact-resnet18"):
        build_embedding_model("resnet50", 16)
    with pytest.raises(ZSLabError, match="out_dim"):
        build_embedding_model("resnet12", 0)
    with pytest.raises(ZSLabError, match="in_size"):
        build_embedding_model("conv4-64", 16, in_size=8)
    assert EMBEDDING_MODELS == tuple(NAMES)
    with pytest.raises(ZSLabError, match="16x16"):
        build_embedding_model("resnet12", 4)(torch.rand(1, 3, 12, 12))
    with pytest.raises(ZSLabError, match=r"\(N, 3, H, W\)"):
        build_embedding_model("preact-resnet18", 4)(torch.rand(3, 32, 32))
