"""zslab.text: encoder specs, prompts, precomputed anchor files, open_clip loading + QuickGELU check, MiniLM."""
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from zslab import ZSLabError
from zslab.text import class_anchors, file_anchors, find_class_list, format_prompts, parse_spec
from zslab.text.encoders import OpenCLIPEncoder, checkpoint_quick_gelu

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# a tiny open_clip architecture (1-layer towers, 32 wide), registered for these tests only
TINY_CFG = {"embed_dim": 16,
            "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
TINY, TINY_QG = "zslabtest-Tiny", "zslabtest-Tiny-quickgelu"
PROMPTS = ["This is a photo of a apple", "This is a photo of a aquarium fish"]


# --------------------------------------------------------------------------- specs and prompts


def test_parse_spec_forms_and_errors():
    assert parse_spec("minilm") == {"kind": "minilm"}
    assert parse_spec("clip:ViT-B-16-quickgelu:/m/c:d.pt") == {"kind": "clip", "arch": "ViT-B-16-quickgelu",
                                                               "path": "/m/c:d.pt"}
    assert parse_spec("file:/a/b.npy") == {"kind": "file", "path": "/a/b.npy", "classes": None}
    assert parse_spec("file:/a/b.npy:/a/c.txt") == {"kind": "file", "path": "/a/b.npy", "classes": "/a/c.txt"}
    for bad in ("bert", "", "clip:ViT-B-16", "file:/a/b.txt"):
        with pytest.raises(ZSLabError, match=r"minilm.*clip:ARCH:PATH.*file:PATH\.npy"):
            parse_spec(bad)
    with pytest.raises(ZSLabError, match="forms"):
        class_anchors("word2vec", ["a", "b"])


def test_format_prompts():
    assert format_prompts(["apple", "aquarium_fish"]) == PROMPTS
    assert format_prompts(["maple_tree"], "a {} in the wild") == ["a maple tree in the wild"]
    with pytest.raises(ZSLabError, match="placeholder"):
        format_prompts(["a"], "no slot")
    with pytest.raises(ZSLabError, match="placeholder"):
        format_prompts(["a"], "{} and {}")
    with pytest.raises(ZSLabError, match="duplicate"):
        format_prompts(["a", "a"])
    with pytest.raises(ZSLabError, match="not one string"):
        format_prompts("apple")


# --------------------------------------------------------------------------- precomputed files


def _write_file_anchors(folder, names, dim=6, seed=0, npy="feats_vit_text.npy", classes="feats_classes.txt"):
    rng = np.random.default_rng(seed)
    arr = (rng.standard_normal((len(names), dim)) * 3).astype(np.float32)
    np.save(folder / npy, arr)
    (folder / classes).write_text("\n".join(names) + "\n")
    return arr


def test_file_anchors_rows_by_name_and_normalised(tmp_path):
    names = ["apple", "aquarium_fish", "maple_tree", "pear"]
    arr = _write_file_anchors(tmp_path, names)
    # the list beside it is found by its prefix ("feats_" starts "feats_vit_text.npy")
    assert find_class_list(tmp_path / "feats_vit_text.npy") == tmp_path / "feats_classes.txt"
    a = class_anchors(f"file:{tmp_path / 'feats_vit_text.npy'}", ["pear", "Aquarium Fish", "apple"])
    assert a.dtype == torch.float32 and a.shape == (3, 6)
    want = arr[[3, 1, 0]] / np.linalg.norm(arr[[3, 1, 0]], axis=1, keepdims=True)
    np.testing.assert_allclose(a.numpy(), want, atol=1e-6)
    # file_anchors gives the stored (unnormalised) rows
    np.testing.assert_array_equal(file_anchors(tmp_path / "feats_vit_text.npy", ["maple_tree", "apple"]), arr[[2, 0]])
    # explicit class list with file:PATH.npy:CLASSES.txt
    (tmp_path / "other.txt").write_text("\n".join(reversed(names)) + "\n")
    b = class_anchors(f"file:{tmp_path / 'feats_vit_text.npy'}:{tmp_path / 'other.txt'}", ["pear"])
    np.testing.assert_allclose(b.numpy()[0], arr[0] / np.linalg.norm(arr[0]), atol=1e-6)


def test_file_anchors_errors(tmp_path):
    names = ["apple", "pear", "tractor"]
    arr = _write_file_anchors(tmp_path, names)
    spec = f"file:{tmp_path / 'feats_vit_text.npy'}"
    with pytest.raises(ZSLabError, match=r"2 of 3 classes are missing.*\['zebra', 'yak'\]"):
        class_anchors(spec, ["apple", "zebra", "yak"])
    arr[1] = 0.0
    np.save(tmp_path / "feats_vit_text.npy", arr)
    with pytest.raises(ZSLabError, match=r"zero-norm.*'pear'"):
        class_anchors(spec, ["apple", "pear"])
    with pytest.raises(ZSLabError, match="not found"):
        class_anchors(f"file:{tmp_path / 'missing.npy'}", ["apple"])
    # two candidate lists for the same prefix-less rule -> ask for an explicit one
    (tmp_path / "feats_vit_classes.txt").write_text("\n".join(names) + "\n")
    with pytest.raises(ZSLabError, match="several class lists"):
        find_class_list(tmp_path / "feats_vit_text.npy")
    np.save(tmp_path / "lonely.npy", arr)
    with pytest.raises(ZSLabError, match="no class list found"):
        find_class_list(tmp_path / "lonely.npy")


def test_real_clip_anchor_file():
    folder = SHARED_DATA / "clip_text_anchors"
    if not (folder / "cifarfs_vitb16_text_features.npy").is_file():
        pytest.skip(f"real CLIP anchors not found under {folder} (../shared/data)")
    names = (folder / "cifarfs_classes.txt").read_text().split()
    raw = np.load(folder / "cifarfs_vitb16_text_features.npy")
    a = class_anchors(f"file:{folder / 'cifarfs_vitb16_text_features.npy'}", ["aquarium fish", names[0]])
    i = names.index("aquarium_fish")
    np.testing.assert_allclose(a[0].numpy(), raw[i] / np.linalg.norm(raw[i]), atol=1e-6)
    assert a.shape == (2, 512)


# --------------------------------------------------------------------------- open_clip


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """Register the tiny architectures; save a random-init model and its reference outputs (open_clip style)."""
    open_clip = pytest.importorskip("open_clip")
    folder = tmp_path_factory.mktemp("oc")
    cfgdir = folder / "cfg"
    cfgdir.mkdir()
    (cfgdir / f"{TINY}.json").write_text(json.dumps(TINY_CFG))
    (cfgdir / f"{TINY_QG}.json").write_text(json.dumps({**TINY_CFG, "quick_gelu": True}))
    open_clip.add_model_config(cfgdir)
    tok = open_clip.get_tokenizer(TINY)
    out = {}
    for arch, seed in ((TINY, 0), (TINY_QG, 0)):
        torch.manual_seed(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = open_clip.create_model(arch, pretrained=None, pretrained_image=False, pretrained_text=False).eval()
        with torch.no_grad():
            ref = model.encode_text(tok(PROMPTS))
        ckpt = folder / f"{arch}.pt"
        torch.save(model.state_dict(), ckpt)
        torch.save(ref, folder / f"{arch}.ref.pt")  # stored outputs for the regression check
        out[arch] = (model, ckpt, folder / f"{arch}.ref.pt")
    return folder, out


def test_open_clip_state_dict_roundtrip_matches_stored_outputs(tiny_clip, tmp_path):
    folder, models = tiny_clip
    model, ckpt, ref_file = models[TINY]
    ref = torch.load(ref_file)
    enc = OpenCLIPEncoder(TINY, ckpt, device="cpu")
    np.testing.assert_allclose(enc.encode(PROMPTS), ref.numpy(), atol=1e-6)
    assert enc.quick_gelu_evidence.startswith("unknown")
    a = class_anchors(f"clip:{TINY}:{ckpt}", ["apple", "aquarium_fish"], cache_dir=tmp_path, device="cpu")
    np.testing.assert_allclose(a.numpy(), torch.nn.functional.normalize(ref, dim=1).numpy(), atol=1e-6)
    # the weights really come from the file: another seed's weights give other anchors
    gen = torch.Generator().manual_seed(1)
    perturbed = {k: v + 0.05 * torch.randn(v.shape, generator=gen) if v.is_floating_point() else v
                 for k, v in model.state_dict().items()}
    other = folder / "other.pt"  # open_clip training-checkpoint layout: {"state_dict": {"module.…": …}}
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in perturbed.items()}}, other)
    b = class_anchors(f"clip:{TINY}:{other}", ["apple", "aquarium_fish"], cache_dir=tmp_path, device="cpu")
    assert (a - b).abs().max() > 1e-2
    # a checkpoint of another architecture: clear error
    with pytest.raises(ZSLabError, match="does not fit open_clip architecture"):
        torch.save({"token_embedding.weight": torch.zeros(3, 3)}, folder / "wrong.pt")
        OpenCLIPEncoder(TINY, folder / "wrong.pt", device="cpu")
    with pytest.raises(ZSLabError, match="unknown open_clip architecture"):
        OpenCLIPEncoder("ViT-Q-99", ckpt)
    with pytest.raises(ZSLabError, match="not found.*never downloads"):
        OpenCLIPEncoder(TINY, folder / "absent.pt")


def test_quickgelu_mismatch_openai_state_dict(tiny_clip):
    folder, models = tiny_clip
    model, _, ref_file = models[TINY_QG]
    sd = dict(model.state_dict())
    sd.update(input_resolution=torch.tensor(32), context_length=torch.tensor(77), vocab_size=torch.tensor(49408))
    openai_ckpt = folder / "openai_format.pt"
    torch.save(sd, openai_ckpt)
    flag, evidence = checkpoint_quick_gelu(sd)
    assert flag is True and "OpenAI-format" in evidence
    with pytest.raises(ZSLabError, match=rf"QuickGELU mismatch.*uses GELU.*{TINY_QG}"):
        OpenCLIPEncoder(TINY, openai_ckpt, device="cpu")
    enc = OpenCLIPEncoder(TINY_QG, openai_ckpt, device="cpu")
    np.testing.assert_allclose(enc.encode(PROMPTS), torch.load(ref_file).numpy(), atol=1e-6)
    # QuickGELU really changes the features: the same weights in the GELU config differ
    plain = folder / "plain.pt"
    torch.save(model.state_dict(), plain)
    assert np.abs(OpenCLIPEncoder(TINY, plain, device="cpu").encode(PROMPTS) - enc.encode(PROMPTS)).max() > 1e-4


def test_quickgelu_torchscript_archive(tiny_clip):
    folder, models = tiny_clip
    model, _, ref_file = models[TINY_QG]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(model), str(folder / "ViT-openai.pt"))
    with pytest.raises(ZSLabError, match="TorchScript archive"):
        OpenCLIPEncoder(TINY, folder / "ViT-openai.pt", device="cpu")
    enc = OpenCLIPEncoder(TINY_QG, folder / "ViT-openai.pt", device="cpu")
    np.testing.assert_allclose(enc.encode(PROMPTS), torch.load(ref_file).numpy(), atol=1e-6)


def test_quickgelu_hf_cache_folder(tiny_clip, tmp_path):
    folder, models = tiny_clip
    model, _, ref_file = models[TINY]
    # an open_clip HF repository in a cache folder, whose config says GELU
    snap = tmp_path / "hub" / "models--laion--Tiny-GELU" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    torch.save(model.state_dict(), snap / "open_clip_pytorch_model.bin")
    (snap / "open_clip_config.json").write_text(json.dumps({"model_cfg": {**TINY_CFG, "quick_gelu": False}}))
    with pytest.raises(ZSLabError, match=r"QuickGELU mismatch.*trained with GELU.*plain config zslabtest-Tiny"):
        OpenCLIPEncoder(TINY_QG, tmp_path / "hub", device="cpu")
    enc = OpenCLIPEncoder(TINY, tmp_path / "hub", device="cpu")  # cache root, repository found inside
    np.testing.assert_allclose(enc.encode(PROMPTS), torch.load(ref_file).numpy(), atol=1e-6)
    # an OpenAI repository known to open_clip's registry (no config file): needs -quickgelu
    snap2 = tmp_path / "hub2" / "models--timm--vit_base_patch16_clip_224.openai" / "snapshots" / "def"
    snap2.mkdir(parents=True)
    torch.save(model.state_dict(), snap2 / "open_clip_pytorch_model.bin")
    with pytest.raises(ZSLabError, match="registry entry for timm/vit_base_patch16_clip_224.openai"):
        OpenCLIPEncoder(TINY, snap2.parents[1], device="cpu")
    # two repositories under one root: ambiguous
    import shutil

    shutil.copytree(snap2.parents[1], tmp_path / "hub" / "models--timm--vit_base_patch16_clip_224.openai")
    with pytest.raises(ZSLabError, match="several open_clip checkpoints"):
        OpenCLIPEncoder(TINY, tmp_path / "hub", device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ZSLabError, match="no open_clip weights"):
        OpenCLIPEncoder(TINY, tmp_path / "empty", device="cpu")


def test_anchor_cache(tiny_clip, tmp_path, monkeypatch):
    _, models = tiny_clip
    _, ckpt, _ = models[TINY]
    spec = f"clip:{TINY}:{ckpt}"
    a = class_anchors(spec, ["apple", "pear"], cache_dir=tmp_path, device="cpu")
    files = sorted(tmp_path.glob("clip-*.pt"))
    assert len(files) == 1
    from zslab.text.encoders import OpenCLIPEncoder as Enc

    def boom(self, *a, **k):
        raise AssertionError("encoder called although the anchors are cached")

    monkeypatch.setattr(Enc, "encode", boom)
    b = class_anchors(spec, ["apple", "pear"], cache_dir=tmp_path, device="cpu")
    assert torch.equal(a, b)
    # a cache hit loads no model at all: the key is the encoder's identity, read from the files
    from zslab.text import sources

    assert sources.encoder_identity(spec) == sources.load_encoder(spec, device="cpu").identity
    monkeypatch.setattr(sources, "_ENCODERS", {})
    monkeypatch.setattr(Enc, "__init__", boom)
    assert torch.equal(class_anchors(spec, ["apple", "pear"], cache_dir=tmp_path, device="cpu"), a)
    # another prompt or class list is another cache entry (and needs the encoder)
    with pytest.raises(AssertionError, match="encoder called"):
        class_anchors(spec, ["apple", "pear"], prompt="a {}", cache_dir=tmp_path, device="cpu")
    with pytest.raises(AssertionError, match="encoder called"):
        class_anchors(spec, ["pear", "apple"], cache_dir=tmp_path, device="cpu")
    monkeypatch.undo()
    # a corrupt cache entry is re-encoded with a warning, then rewritten
    files[0].write_bytes(b"garbage")
    with pytest.warns(RuntimeWarning, match="unreadable anchor cache"):
        c = class_anchors(spec, ["apple", "pear"], cache_dir=tmp_path, device="cpu")
    assert torch.allclose(a, c, atol=1e-6)
    assert torch.load(files[0], weights_only=True)["key"]["classes"] == ["apple", "pear"]
    # no cache at all
    d = class_anchors(spec, ["apple", "pear"], cache_dir=False, device="cpu")
    assert torch.allclose(a, d, atol=1e-6) and len(list(tmp_path.glob("clip-*.pt"))) == 1


# --------------------------------------------------------------------------- MiniLM (offline default)


def test_minilm_offline_anchors(tmp_path):
    a = class_anchors("minilm", ["apple", "pear", "pickup_truck"], cache_dir=tmp_path, device="cpu")
    assert a.shape == (3, 384) and a.dtype == torch.float32
    np.testing.assert_allclose(a.norm(dim=1).numpy(), 1.0, atol=1e-5)
    cos = a @ a.T
    assert cos[0, 1] > cos[0, 2] + 0.05  # apple is closer to pear than to a pickup truck
    # the same as encoding the prompts directly with sentence-transformers, then normalising
    from zslab.text.sources import load_encoder

    raw = load_encoder("minilm", device="cpu").model.encode(
        ["This is a photo of a apple", "This is a photo of a pear", "This is a photo of a pickup truck"],
        convert_to_tensor=True, normalize_embeddings=True).cpu()
    torch.testing.assert_close(a, raw, atol=1e-5, rtol=0)
    from zslab.text.sources import encoder_identity

    assert encoder_identity("minilm") == load_encoder("minilm", device="cpu").identity


def test_minilm_load_prints_no_weight_loading_bar(capfd):
    """transformers' "Loading weights: 100% 103/103" bar used to land in notebook outputs (the
    explorer's among them) on every MiniLM load; loading is quiet now, and transformers' own
    progress-bar setting is left as it was."""
    from transformers.utils import logging as hf_logging

    from zslab.text.encoders import MiniLMEncoder

    assert hf_logging.is_progress_bar_enabled()
    capfd.readouterr()
    enc = MiniLMEncoder(device="cpu")
    out, err = capfd.readouterr()
    assert "Loading weights" not in out + err, err[-300:]
    assert hf_logging.is_progress_bar_enabled()  # restored
    assert enc.encode(["a pear"]).shape == (1, 384)
