"""The explorer (zslab.explore + zslab.viz.explorer): view numbers, images, widgets."""
import json

import matplotlib
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zslab import ZSLabError
from zslab import explore as ex
from zslab.models import APN


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    from conftest import limit_threads

    with limit_threads(1):
        yield


@pytest.fixture(scope="module")
def data():
    from conftest import tiny_zsl_data

    return tiny_zsl_data()


@pytest.fixture(scope="module")
def apn(data):
    torch.manual_seed(0)
    model = APN.from_config({"backbone": "small", "width": 4}, data.num_attributes)
    return ex.model_from_parts("apn", model, data, name="tiny APN")


class TinyEmbed(nn.Module):
    def __init__(self, dim=8):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.head = nn.Linear(6, dim, bias=False)

    def forward(self, x):
        return self.head(F.relu(self.conv(x)).mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def laat(data):
    torch.manual_seed(1)
    anchors = torch.randn(len(data.class_names), 8)
    return ex.model_from_parts("laat", TinyEmbed(), data, name="tiny LAAT", anchors=anchors, tau=0.5)


def _img(h, i=0, split="test_unseen"):
    return ex.pick_image(h, split, i)


# ------------------------------------------------------------------------------------- APN views
@pytest.mark.parametrize("mode", ["has", "attack"])
def test_eps_zero_gives_zero_perturbation_and_same_predictions(apn, mode):
    v = ex.compute_view(apn, _img(apn), attribute=2, mode=mode, eps=0, steps=4)
    assert torch.equal(v.adv, v.clean) and v.numbers["delta_linf"] == 0.0
    n = v.numbers
    assert n["pred_clean"] == n["pred_adv"]
    assert n["class_scores"]["clean"] == n["class_scores"]["adv"]
    assert n["attr_scores"]["clean"] == n["attr_scores"]["adv"]
    assert torch.equal(v.attention_clean, v.attention_adv)


def test_view_numbers_match_the_model(apn, data):
    img = _img(apn, 3)
    v = ex.compute_view(apn, img, attribute="a4", eps=4 / 255, steps=2, top_k=3)
    n = v.numbers
    x = img.image[None]
    with torch.no_grad():
        o = apn.model(x, data.class_attributes[data.unseen_classes])
        oa = apn.model(v.adv[None], data.class_attributes[data.unseen_classes])
    assert n["attribute"] == 4 and n["attribute_name"] == "a4"
    assert torch.allclose(torch.tensor(n["class_scores"]["clean"]), o["logits"][0], atol=1e-5)
    assert torch.allclose(torch.tensor(n["class_scores"]["adv"]), oa["logits"][0], atol=1e-5)
    assert n["class_scores"]["index"] == data.unseen_classes.tolist()
    assert n["pred_clean_index"] == int(data.unseen_classes[o["logits"][0].argmax()])
    assert torch.allclose(v.attention_clean, o["attention"][0, 4], atol=1e-6)
    assert torch.allclose(v.attention_adv, oa["attention"][0, 4], atol=1e-6)
    top = n["attr_topk"]["clean"]
    assert [r["index"] for r in top] == o["attr"][0].topk(3).indices.tolist()
    assert all(r["name"] == data.attribute_names[r["index"]] for r in top)
    assert 0 < n["delta_linf"] <= 4 / 255 + 1e-6 and 0 <= float(v.adv.min()) and float(v.adv.max()) <= 1
    assert n["label"] == int(data.splits["test_unseen"].labels[3])
    # an unseen-class image: HAS's L_CLS label is the clean prediction among the training classes
    assert n["has_label_source"].startswith("clean prediction")
    assert len(n["trace"]) == 2


def test_view_equals_the_has_generator(apn, data):
    """The has mode is zslab.methods.has.HAS with the chosen weights (terms off = weight 0), label = true class."""
    from zslab.methods.has import HAS, HASConfig

    img = _img(apn, 1, split="test_seen")  # a training-class image: its own label is used
    lam = {"rob": 0.5, "rel": 2.0, "att_mag": 1e-3, "att_ent": -0.3}
    v = ex.compute_view(apn, img, mode="has", terms=("rel", "att_ent"), lambdas=lam, eps=6 / 255, steps=3,
                        step_size=2 / 255)
    assert v.numbers["has_label_source"] == "true class"
    A = data.class_attributes[data.train_classes]
    cfg = HASConfig(steps=3, step_size=2 / 255, eps=6 / 255, lambda_rob=0.0, lambda_rel=2.0, lambda_att_mag=0.0,
                    lambda_att_ent=-0.3)
    y = torch.tensor([int((data.train_classes == img.label).nonzero()[0])])
    ref = HAS(apn.model, cfg, class_attributes=A)(img.image[None], y)
    assert torch.equal(v.adv, ref[0])
    assert v.numbers["has_config"]["lambda_rob"] == 0.0 and v.numbers["terms"] == ["rel", "att_ent"]


def test_turning_a_term_off_changes_the_perturbation(apn):
    img = _img(apn, 2)
    on = ex.compute_view(apn, img, eps=8 / 255, steps=3)
    off = ex.compute_view(apn, img, eps=8 / 255, steps=3, terms=("rel", "att_mag", "att_ent"))
    assert not torch.equal(on.adv, off.adv)
    # the rob term's contribution is gone from L_HAS at the clean image (rel is 0 there)
    t = on.numbers["has_terms"]["clean"]
    assert off.numbers["has_terms"]["clean"]["has"] == pytest.approx(t["has"] + 1.0 * t["rob"], abs=1e-5)
    assert off.numbers["has_config"]["lambda_rob"] == 0.0 and on.numbers["has_config"]["lambda_rob"] == 1.0


def test_attack_mode_is_pgd_on_the_candidate_scores(apn, data):
    from zslab.attacks import PGD
    from zslab.methods.has import BindClasses

    img = _img(apn, 5)
    v = ex.compute_view(apn, img, mode="attack", eps=8 / 255, steps=4, seed=3)
    A = data.class_attributes[data.unseen_classes]
    y = torch.tensor([int((data.unseen_classes == img.label).nonzero()[0])])
    ref = PGD(BindClasses(apn.model, A), eps=8 / 255, alpha=2.5 * (8 / 255) / 4, steps=4, random_start=True,
              seed=3)(img.image[None], y)
    assert torch.equal(v.adv, ref[0])
    # the attack ascends the CE of the true class: its score relative to the others does not improve
    s_c, s_a = torch.tensor(v.numbers["class_scores"]["clean"]), torch.tensor(v.numbers["class_scores"]["adv"])
    assert F.cross_entropy(s_a[None], y) >= F.cross_entropy(s_c[None], y) - 1e-6


def test_deterministic_for_a_seed(apn, laat):
    for h, mode in ((apn, "has"), (apn, "attack"), (laat, "attack")):
        img = _img(h, 1)
        a = ex.compute_view(h, img, mode=mode, eps=8 / 255, steps=3, seed=7)
        b = ex.compute_view(h, img, mode=mode, eps=8 / 255, steps=3, seed=7)
        assert torch.equal(a.adv, b.adv)
        assert json.dumps(a.to_dict(), sort_keys=True) == json.dumps(b.to_dict(), sort_keys=True)
    c = ex.compute_view(laat, _img(laat, 1), eps=8 / 255, steps=3, seed=8)  # random start depends on the seed
    assert not torch.equal(c.adv, b.adv)


def test_model_state_untouched(data):
    """A view leaves the model's weights, BN statistics, grads and train flag as they were."""
    torch.manual_seed(2)
    model = APN.from_config({"backbone": "small", "width": 4}, data.num_attributes)
    h = ex.model_from_parts("apn", model, data)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for mode in ("has", "attack"):
        ex.compute_view(h, _img(h), mode=mode, eps=8 / 255, steps=2)
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    ex.first_correct(h)
    assert model.training


def test_first_correct_finds_a_correct_image(apn, data):
    i = ex.first_correct(apn, "test_unseen")
    ds = data.splits["test_unseen"]
    v = ex.compute_view(apn, _img(apn, i), eps=0)
    right = [j for j in range(len(ds)) if ex.compute_view(apn, _img(apn, j), eps=0).numbers["pred_clean_index"]
             == int(ds.labels[j])]
    assert (i == right[0]) if right else (i == 0)
    assert (v.numbers["pred_clean_index"] == v.numbers["label"]) == bool(right)


def test_bad_settings_raise(apn):
    img = _img(apn)
    with pytest.raises(ZSLabError, match="mode"):
        ex.compute_view(apn, img, mode="fgsm")
    with pytest.raises(ZSLabError, match="loss term"):
        ex.compute_view(apn, img, terms=("cls",))
    with pytest.raises(ZSLabError, match="attribute"):
        ex.compute_view(apn, img, attribute=99)
    with pytest.raises(ZSLabError, match="eps"):
        ex.compute_view(apn, img, eps=-1)
    with pytest.raises(ZSLabError, match="candidates"):
        ex.compute_view(apn, img, candidates="novel")
    with pytest.raises(ZSLabError, match="step_size"):
        ex.compute_view(apn, img, mode="attack", step_size=0)
    with pytest.raises(ZSLabError, match="steps"):
        ex.compute_view(apn, img, steps=-1)
    assert ex.resolve_attribute(apn, torch.tensor(2).numpy()[()]) == 2  # numpy integers are indices
    assert ex.resolve_attribute(apn, "a5") == 5


# ------------------------------------------------------------------------------------- LAAT views
def test_laat_prediction_is_the_anchor_argmax(laat, data):
    img = _img(laat, 4)
    v = ex.compute_view(laat, img, eps=8 / 255, steps=3)
    n = v.numbers
    cand = data.unseen_classes
    with torch.no_grad():
        cos = F.normalize(laat.model(img.image[None]), dim=1) @ laat.anchors[cand].t()
        cos_a = F.normalize(laat.model(v.adv[None]), dim=1) @ laat.anchors[cand].t()
    assert torch.allclose(torch.tensor(n["anchor_scores"]["clean"]), cos[0], atol=1e-5)
    assert torch.allclose(torch.tensor(n["anchor_scores"]["adv"]), cos_a[0], atol=1e-5)
    assert n["pred_clean_index"] == int(cand[cos[0].argmax()])
    assert n["pred_adv_index"] == int(cand[cos_a[0].argmax()])
    assert n["class_topk"]["clean"][0]["index"] == n["pred_clean_index"]
    assert 0 < n["delta_linf"] <= 8 / 255 + 1e-6 and v.kind == "laat" and v.attention_clean is None
    all_ = ex.compute_view(laat, img, eps=0, candidates="all")
    assert all_.numbers["anchor_scores"]["index"] == list(range(len(data.class_names)))
    assert torch.equal(all_.adv, all_.clean) and all_.numbers["pred_clean"] == all_.numbers["pred_adv"]


# ------------------------------------------------------------------------------------- images
def test_bad_image_paths_name_the_path(apn, tmp_path):
    missing = tmp_path / "nope" / "bird.png"
    with pytest.raises(ZSLabError, match=str(missing)):
        ex.pick_image(apn, path=missing)
    bad = tmp_path / "fake.png"
    bad.write_text("not an image")
    with pytest.raises(ZSLabError, match="fake.png"):
        ex.pick_image(apn, path=bad)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ZSLabError, match="no image files"):
        ex.pick_image(apn, path=empty)
    with pytest.raises(ZSLabError, match="out of range"):
        ex.pick_image(apn, "test_unseen", 10_000)
    with pytest.raises(ZSLabError, match="no split"):
        ex.pick_image(apn, "holdout", 0)


def test_image_files_are_resized_and_labelled_from_their_folder(apn, data, tmp_path):
    from PIL import Image

    folder = tmp_path / data.class_names[6]
    folder.mkdir()
    arr = (torch.rand(40, 24, 3) * 255).to(torch.uint8).numpy()
    Image.fromarray(arr).save(folder / "b.png")
    Image.fromarray(arr[:, :, ::-1].copy()).save(folder / "a.jpg")
    img = ex.pick_image(apn, path=folder, index=1)  # sorted: a.jpg, b.png
    assert img.source["path"].endswith("b.png") and img.label == 6
    assert img.image.shape == (3, apn.image_size, apn.image_size)
    assert 0 <= float(img.image.min()) and float(img.image.max()) <= 1
    v = ex.compute_view(apn, img, eps=2 / 255, steps=1)
    assert v.numbers["label_name"] == data.class_names[6]
    other = tmp_path / "unnamed.png"
    Image.fromarray(arr).save(other)
    assert ex.pick_image(apn, path=other).label is None


# ------------------------------------------------------------------------------------- figure + UI
def test_figure_is_labelled(apn, laat):
    from zslab.viz.explorer import amplified_delta, explorer_figure

    v = ex.compute_view(apn, _img(apn), attribute=1, eps=4 / 255, steps=2)
    fig = explorer_figure(v)
    assert isinstance(fig, matplotlib.figure.Figure)
    titles = " ".join(a.get_title() for a in fig.axes)
    _, s = amplified_delta(v.delta)
    assert f"×{s:.3g}" in titles and "attention h_k" in titles and "a1" in titles
    assert any("attribute score" in a.get_xlabel() for a in fig.axes)
    assert "HAS perturbation" in fig._suptitle.get_text()
    fl = explorer_figure(ex.compute_view(laat, _img(laat), eps=0))
    assert any("cosine" in a.get_xlabel() for a in fl.axes)
    assert "zero" in " ".join(a.get_title() for a in fl.axes)
    amp, s0 = amplified_delta(torch.zeros(3, 4, 4))
    assert s0 == 1.0 and torch.all(amp == 0.5)
    matplotlib.pyplot.close("all")


def test_widget_update_changes_view_and_figure(apn, laat, tmp_path):
    from zslab.viz.explorer import explorer_widget

    ui = explorer_widget({"APN": apn, "LAAT": laat}, eps=4.0, steps=2)
    assert ui.updates == 1 and ui.view is not None and ui.error is None
    assert ui.view.numbers["eps_255"] == pytest.approx(4.0)
    fig0, view0 = ui.figure, ui.view
    v = ui.set(index=2, attribute=3, eps=0.0)
    assert ui.updates == 2  # several controls, one update
    assert v is ui.view and v is not view0 and ui.figure is not fig0
    assert v.numbers["source"] == {"split": "test_unseen", "index": 2} and v.numbers["attribute"] == 3
    assert torch.equal(v.adv, v.clean)
    v = ui.set(eps=8.0, use_rob=False)
    assert v.numbers["terms"] == ["rel", "att_mag", "att_ent"] and ui.controls["lambda_rob"].disabled
    ui.controls["steps"].value = 3  # an interactive change triggers its own update
    assert ui.updates == 4 and ui.view.numbers["steps"] == 3
    v = ui.set(model="LAAT")
    assert v.kind == "laat" and ui.controls["attribute"].disabled and ui.controls["mode"].disabled
    v = ui.set(source="file/folder", path=str(tmp_path / "missing.png"))
    assert v is None and str(tmp_path / "missing.png") in ui.error
    with pytest.raises(ZSLabError, match="unknown explorer control"):
        ui.set(epsilon=3)
    matplotlib.pyplot.close("all")


def test_save_results_roundtrip(apn, tmp_path):
    v = ex.compute_view(apn, _img(apn), eps=2 / 255, steps=1)
    out = ex.save_results({"a": v}, tmp_path / "r.json", {"notebook": "x"})
    back = json.loads((tmp_path / "r.json").read_text())
    assert back == out and back["views"]["a"]["delta_linf"] == v.numbers["delta_linf"]


# ------------------------------------------------------------------------------------- loading
def test_load_model_errors(tmp_path):
    with pytest.raises(ZSLabError, match="not a zslab run directory"):
        ex.load_model(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ZSLabError, match="no best.pt"):
        ex.load_model(tmp_path)
    with pytest.raises(ZSLabError, match="unknown explorer method"):
        ex.load_model(None, method="clip", cache_dir=tmp_path)


def test_load_model_trains_once_then_reuses(tmp_path):
    """No run dir: a study-preset model is trained into the cache and reused the next time."""
    from zslab.experiments import has_study as hs

    sp = hs.STUDY_PRESETS["smoke"]
    saved = dict(sp["overrides"])
    sp["overrides"].update({"epochs": 1, "data.train_per_class": 2, "data.val_seen_per_class": 1,
                            "data.test_seen_per_class": 1, "data.unseen_per_class": 2})
    try:
        h = ex.load_model(None, method="apn", cache_dir=tmp_path)
        best = tmp_path.glob("apn-seed0-*/best.pt").__next__()
        stamp = best.stat().st_mtime_ns
        h2 = ex.load_model(None, method="apn", cache_dir=tmp_path, data=h.data)
    finally:
        sp["overrides"].clear()
        sp["overrides"].update(saved)
    assert h.kind == "apn" and h2.run_dir == h.run_dir and best.stat().st_mtime_ns == stamp
    for a, b in zip(h.model.state_dict().values(), h2.model.state_dict().values()):
        assert torch.equal(a, b)
    h3 = ex.load_model(h.run_dir, data=h.data)  # the run directory itself
    assert h3.kind == "apn" and h3.image_size == h.data.image_size
    v = ex.compute_view(h3, ex.pick_image(h3, "test_unseen", 0), eps=2 / 255, steps=1)
    assert "attention_in_part" in v.numbers  # embedded shapes images carry part masks
    assert 0.0 <= v.numbers["attention_in_part"]["clean"] <= 1.0


def test_caption_describes_what_is_drawn_and_labels_the_class_as_such():
    """shapes images sample their attributes per image: the caption names the drawn attributes
    (from the image's own values) and gives the class name labelled as the class, so a caption
    never calls a blue head red."""
    from types import SimpleNamespace

    from zslab.data import load_dataset
    from zslab.data.shapes import class_name

    data = load_dataset("shapes", image_size=16, n_train_classes=6, n_val_classes=2, n_unseen_classes=3,
                        train_per_class=2, val_seen_per_class=1, test_seen_per_class=1, unseen_per_class=6)
    ds = data.splits["test_unseen"]
    values = ds.extras["values"]
    differs = [i for i in range(len(ds)) if class_name(values[i].tolist()) != data.class_names[int(ds.labels[i])]]
    assert differs, "the fixture should hold an image whose drawn attributes differ from its class's"
    i = differs[0]
    img = ex.pick_image(SimpleNamespace(data=data, image_size=16), "test_unseen", i)
    drawn, cls = class_name(values[i].tolist()), data.class_names[int(ds.labels[i])]
    assert img.caption == f"test_unseen[{i}] drawn: {drawn} — class: {cls}"


def test_copy_is_a_second_explorer_and_leaves_the_first_as_it_was(apn, laat):
    """One widget per notebook cell, in the state its own cell set (#10 item 2): ``copy`` builds a
    new explorer from the first one's controls; the first keeps its view, figure and widget."""
    from zslab.viz.explorer import explorer_widget

    ui = explorer_widget({"APN": apn, "LAAT": laat}, eps=4.0, steps=2, attribute=3)
    view0, fig0 = ui.view, ui.figure
    b = ui.copy(index=2, steps=1, use_rob=False)
    assert b is not ui and b.widget.model_id != ui.widget.model_id
    assert b.controls["steps"] is not ui.controls["steps"]
    assert b.updates == 1 and b.view.numbers["steps"] == 1 and b.view.numbers["source"]["index"] == 2
    assert b.view.numbers["attribute"] == 3 and b.view.numbers["eps_255"] == pytest.approx(4.0)  # inherited
    assert b.view.numbers["terms"] == ["rel", "att_mag", "att_ent"]
    assert ui.view is view0 and ui.figure is fig0 and ui.updates == 1       # the first one untouched
    assert ui.values()["steps"] == 2 and ui.values()["use_rob"] is True
    # to a model without attributes: the attribute index is not carried over (it would be invalid)
    c = b.copy(model="LAAT")
    assert c.view.kind == "laat" and c.controls["attribute"].disabled and c.view.numbers["steps"] == 1
    # and back: an APN copy of the LAAT explorer starts from the first attribute
    assert c.copy(model="APN").view.numbers["attribute"] == 0
    matplotlib.pyplot.close("all")


def test_updates_leave_no_pyplot_figure_open(apn):
    """The inline backend prints every figure left open at the end of a cell: the explorer's own
    figure printed as a second, static copy under the widget that never changed (#10 item 2)."""
    import matplotlib.pyplot as plt

    from zslab.viz.explorer import explorer_widget

    plt.close("all")
    ui = explorer_widget({"APN": apn}, eps=4.0, steps=1)
    ui.set(steps=2)
    ui.copy(index=1)
    assert plt.get_fignums() == []
    assert ui.figure.axes and ui.png[:8] == b"\x89PNG\r\n\x1a\n"  # the figure itself is still usable


def test_display_bundle_carries_the_widget_and_a_static_fallback(apn, laat):
    """What ``display(ui)`` sends (#10 item 5): the live widget first, and for a viewer that cannot
    show it (an untrusted notebook, nbviewer) the current figure as PNG and HTML with a note,
    instead of ``VBox(children=(HBox(...``."""
    import base64

    from zslab.viz.explorer import explorer_widget

    ui = explorer_widget({"APN": apn, "LAAT": laat}, eps=4.0, steps=1)
    ui.set(model="LAAT", steps=2)
    data = ui._repr_mimebundle_()
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == ui.widget.model_id
    png = base64.b64decode(data["image/png"])
    assert png == ui.png and png[:8] == b"\x89PNG\r\n\x1a\n"
    assert f'src="data:image/png;base64,{data["image/png"]}"' in data["text/html"]
    text = data["text/plain"]
    assert not text.startswith("VBox") and "model LAAT" in text and "2 steps" in text and "run the cell" in text
    assert "run the cell" in data["text/html"]
    # a failed view (bad path) says so instead of showing a stale picture's note
    ui2 = explorer_widget({"APN": apn}, source="file/folder", path="/nonexistent/x.png")
    d2 = ui2._repr_mimebundle_()
    assert "image/png" not in d2 and "error" in d2["text/plain"] and "/nonexistent/x.png" in d2["text/plain"]
    matplotlib.pyplot.close("all")


def test_checkbox_labels_are_not_cut_to_a_fixed_width(apn):
    """#10 item 4: a fixed 330 px cut "+λ_att_mag·mean(h)  attention magnitude (E…" in JupyterLab;
    every control with a description either sizes to it ("auto") or gives it its own width
    ("initial"). The real-browser test measures the rendered labels."""
    from zslab.viz.explorer import explorer_widget

    ui = explorer_widget({"APN": apn})
    for name, ctl in ui.controls.items():
        if name.startswith("use_"):
            assert ctl.layout.width in (None, "auto"), (name, ctl.layout.width)
        elif ctl.description:
            assert ctl.style.description_width == "initial", name
    matplotlib.pyplot.close("all")


def test_display_bundle_after_a_failed_update_shows_the_error_not_an_older_picture(apn):
    from zslab.viz.explorer import explorer_widget

    ui = explorer_widget({"APN": apn}, steps=1)
    assert "image/png" in ui._repr_mimebundle_()
    ui.set(source="file/folder", path="/nonexistent/y.png")
    d = ui._repr_mimebundle_()
    assert "image/png" not in d and "text/html" not in d and "/nonexistent/y.png" in d["text/plain"]
    matplotlib.pyplot.close("all")
