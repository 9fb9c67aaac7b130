"""APN model (HAS §3.2) and backbones."""
import pytest
import torch

from zslab import ZSLabError
from zslab.models import APN, build_backbone


def test_apn_shapes_and_compatibility_scores():
    torch.manual_seed(0)
    m = APN(build_backbone("small", width=8), num_attributes=24).eval()
    x = torch.rand(3, 3, 32, 32)
    A = torch.rand(7, 24)
    out = m(x, A)
    assert out["features"].shape == (3, 32)
    assert out["attr"].shape == (3, 24)
    assert out["attention"].shape == (3, 24, 8, 8)
    assert out["attr_local"].shape == (3, 24)
    # Eq. 1/8: score = g(x)^T V phi(y)
    expected = out["features"] @ m.V.weight.t() @ A.t()
    assert torch.allclose(out["logits"], expected, atol=1e-5)
    # max-pooled attention
    assert torch.allclose(out["attr_local"], out["attention"].amax(dim=(2, 3)))
    # set_classes gives the same logits without passing A
    assert torch.allclose(m.set_classes(A)(x)["logits"], out["logits"])
    with pytest.raises(ValueError, match=r"\(n, 24\)"):
        m.set_classes(torch.rand(3, 5))


def test_apn_on_64px_gives_larger_maps():
    m = APN(build_backbone("small", width=4), 24).eval()
    assert m(torch.rand(1, 3, 64, 64))["attention"].shape[-2:] == (16, 16)


def test_resnet_backbones_and_local_weights(tmp_path):
    bb = build_backbone("resnet18")
    assert bb(torch.rand(1, 3, 64, 64)).shape == (1, 512, 2, 2)
    with pytest.raises(ZSLabError, match="weight file not found.*never downloads"):
        build_backbone("resnet50", weights=str(tmp_path / "missing.pth"))
    import torchvision
    sd = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(sd, tmp_path / "r18.pth")
    bb2 = build_backbone("resnet18", weights=str(tmp_path / "r18.pth"))
    assert torch.equal(bb2.trunk[0].weight, sd["conv1.weight"])
    with pytest.raises(ZSLabError, match="not a ResNet-50 state_dict"):
        build_backbone("resnet50", weights=str(tmp_path / "r18.pth"))
    with pytest.raises(ZSLabError, match="unknown backbone 'vgg'"):
        build_backbone("vgg")
