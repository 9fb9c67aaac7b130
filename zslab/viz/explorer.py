"""The interactive explorer: a figure for a :class:`zslab.explore.View` and an ipywidgets UI.

* :func:`explorer_figure` — one titled, labelled figure per view: the image, the perturbation
  amplified (the factor is in the panel title), the perturbed image, and for APN/HAS models the
  chosen attribute's attention map h_k(x) (HAS §3.2) overlaid on the clean and on the perturbed
  image (one colour scale for both), the predicted attribute scores â (top-k, clean vs perturbed)
  and the class scores s(y) = âᵀφ(y) over the candidate classes (Eq. 8); for LAAT models the
  cosine of the image feature to each candidate anchor (LAAT §3.7), clean vs under PGD.
* :func:`explorer_widget` — dropdowns / sliders (model, image source, index or path, attribute,
  mode, HAS loss terms with their λ, ε, steps, seed) that recompute the view and the figure on
  every change; :meth:`ExplorerUI.set` sets several controls in code and runs one update (what
  the notebook does under nbval, where nobody moves a slider); :meth:`ExplorerUI.copy` makes a
  second explorer from the first one's settings, so that every notebook cell shows its own widget
  in the state that cell set.

Display an explorer with ``display(ui)`` (or as a cell's last expression). Its output carries the
live widget and, as alternatives in the same output, the current figure as PNG and HTML with a
note: JupyterLab with a running kernel (or a trusted notebook whose saved widget state it
restores) shows the controls; a viewer that cannot render widgets — an untrusted notebook opened
in JupyterLab, nbviewer, GitHub — shows the static figure of that cell's view and says to run the
cell for the controls, instead of ``VBox(children=...)``. The figure is drawn off pyplot's figure
list, so the inline backend does not print a second, static copy below the widget.
"""
from __future__ import annotations

import base64
import html
import io
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from zslab import ZSLabError
from zslab.explore import (DEFAULT_LAMBDAS, HAS_TERMS, TERM_LABELS, compute_view, list_images, pick_image,
                           resolve_attribute)
from zslab.viz.plots import _img

__all__ = ["explorer_figure", "amplified_delta", "explorer_widget", "ExplorerUI", "figure_png"]


def amplified_delta(delta: torch.Tensor) -> tuple[torch.Tensor, float]:
    """``(0.5 + s·δ, s)`` with s = 0.5 / max|δ| (the largest change reaches black or white; mid
    gray = no change); s = 1 for a zero perturbation."""
    m = float(delta.abs().max()) if delta.numel() else 0.0
    s = 0.5 / m if m > 0 else 1.0
    return (0.5 + s * delta).clamp(0, 1), s


def figure_png(fig, dpi: int = 80) -> bytes:
    """``fig`` rendered as PNG bytes (tight bounding box)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(str(text), width))


def _bars(ax, labels, clean, adv, *, xlabel, mark=None, title=""):
    """Horizontal grouped bars (clean vs perturbed) for ``labels`` (top row first)."""
    y = np.arange(len(labels))[::-1]
    h = 0.38
    ax.barh(y + h / 2, clean, h, color="tab:blue", label="clean")
    ax.barh(y - h / 2, adv, h, color="tab:red", label="perturbed")
    ax.set_yticks(y)
    ax.set_yticklabels([_wrap(n, 34) for n in labels], fontsize=6)
    for lab in ax.get_yticklabels():
        if mark is not None and lab.get_text().replace("\n", " ") == mark:
            lab.set_fontweight("bold")
    ax.axvline(0, color="k", lw=0.6)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title, fontsize=8)
    ax.grid(axis="x", alpha=0.3)


def _union_topk(topk: dict, key: str = "index") -> list[int]:
    seen = []
    for row in topk["clean"] + topk["adv"]:
        if row[key] not in seen:
            seen.append(row[key])
    return seen


def explorer_figure(view, top_k: int | None = None):
    """The figure of a :class:`zslab.explore.View` (see the module docstring); ``top_k``: how many
    of the highest class / anchor scores (clean and perturbed) to draw when there are many
    candidate classes. Returns a matplotlib Figure."""
    n = view.numbers
    amp, s = amplified_delta(view.delta)
    img_c, img_a = _img(view.clean), _img(view.adv)
    eps_txt = f"ε = {n['eps_255']:.3g}/255, {n['steps']} steps of {n['step_size_255']:.3g}/255"
    if view.kind == "apn":
        fig = plt.figure(figsize=(13.5, 7.8))
        gt = fig.add_gridspec(1, 6, width_ratios=[1] * 5 + [0.06], left=0.03, right=0.92, top=0.85, bottom=0.56,
                              wspace=0.25)
        top = [fig.add_subplot(gt[0, j]) for j in range(5)]
        cax = fig.add_subplot(gt[0, 5])
        gb = fig.add_gridspec(1, 2, width_ratios=[1, 1.15], left=0.13, right=0.98, top=0.44, bottom=0.07,
                              wspace=0.62)
        bars = [fig.add_subplot(gb[0, 0]), fig.add_subplot(gb[0, 1])]
    else:
        fig = plt.figure(figsize=(11.5, 6.6))
        gt = fig.add_gridspec(1, 3, left=0.05, right=0.95, top=0.84, bottom=0.52, wspace=0.25)
        top = [fig.add_subplot(gt[0, j]) for j in range(3)]
        gb = fig.add_gridspec(1, 1, left=0.3, right=0.97, top=0.40, bottom=0.09)
        bars = [fig.add_subplot(gb[0, 0])]
    top[0].imshow(img_c, interpolation="nearest")
    top[0].set_title(_wrap(f"(a) image: {view.caption}", 30), fontsize=7)
    top[1].imshow(_img(amp), interpolation="nearest")
    zero = n["delta_linf"] == 0
    top[1].set_title(_wrap("(b) perturbation δ: zero" if zero else
                           f"(b) perturbation δ ×{s:.3g} + 0.5 (gray = 0); max |δ| = {n['delta_linf_255']:.2f}/255, "
                           f"mean |δ| = {n['delta_mean_abs_255']:.2f}/255", 32), fontsize=7)
    top[2].imshow(img_a, interpolation="nearest")
    top[2].set_title(_wrap(f"(c) perturbed image (x + δ)", 30), fontsize=7)
    if view.kind == "apn":
        k = n["attribute_name"]
        H, W = view.clean.shape[-2:]
        maps = torch.stack([view.attention_clean, view.attention_adv]).float()
        up = F.interpolate(maps[:, None], size=(H, W), mode="bilinear", align_corners=False)[:, 0].numpy()
        lo, hi = float(up.min()), float(up.max())
        share = n.get("attention_in_part")
        for j, (ax, im, a, tag) in enumerate(((top[3], img_c, up[0], "clean"), (top[4], img_a, up[1], "perturbed"))):
            ax.imshow(im, interpolation="nearest")
            h = ax.imshow(a, cmap="jet", alpha=0.5, vmin=lo, vmax=hi if hi > lo else lo + 1e-6,
                          interpolation="bilinear")
            t = f"({'de'[j]}) attention h_k on the {tag} image; k = {k}"
            if share is not None:
                t += f"; {100 * share['clean' if j == 0 else 'adv']:.0f}% on the {share['part']} " \
                     f"(uniform {100 * share['uniform']:.0f}%)"
            ax.set_title(_wrap(t, 32), fontsize=7)
        fig.colorbar(h, cax=cax, label="attention h_k(x)\n(one scale for d, e)")
        # predicted attributes: the union of the clean and the perturbed top-k, plus the chosen one
        att = n["attr_scores"]
        ids = _union_topk(n["attr_topk"])
        if n["attribute"] not in ids:
            ids.append(n["attribute"])
        _bars(bars[0], [att["names"][i] for i in ids], [att["clean"][i] for i in ids], [att["adv"][i] for i in ids],
              xlabel="predicted attribute score â_k = g(x)ᵀV (global branch)", mark=k,
              title=_wrap("(f) predicted attributes: top scores, clean ∪ perturbed (bold: the attribute of d, e)", 70))
        cs = n["class_scores"]
        order = _class_order(cs, top_k, n.get("label"))
        _bars(bars[1], [cs["names"][i] for i in order], [cs["clean"][i] for i in order],
              [cs["adv"][i] for i in order], xlabel="class score s(y) = âᵀφ(y) (HAS Eq. 8)",
              mark=n.get("label_name"),
              title=_wrap(f"(g) class scores over the {n['candidates']} classes (bold: true class); "
                          f"prediction clean → perturbed: {n['pred_clean']} → {n['pred_adv']}", 90))
        if n["mode"] == "has":
            on = ", ".join(f"λ_{t} = {n['lambdas'][t]:g}" for t in n["terms"]) or "none (L_CLS only)"
            how = f"HAS perturbation (descent on L_HAS, Eq. 3–7; terms on: {on})"
        else:
            how = f"adversarial attack: {n['attack']}"
        fig.suptitle(_wrap(f"{view.model_name}: {how}; {eps_txt}; seed {n['seed']}", 150), fontsize=10)
    else:
        sc = n["anchor_scores"]
        order = _class_order(sc, top_k, n.get("label"))
        _bars(bars[0], [sc["names"][i] for i in order], [sc["clean"][i] for i in order], [sc["adv"][i] for i in order],
              xlabel="cosine similarity cos(f(x), anchor) (LAAT §3.7)", mark=n.get("label_name"),
              title=_wrap(f"(d) anchor scores over the {n['candidates']} classes (bold: true class); prediction "
                          f"clean → under attack: {n['pred_clean']} → {n['pred_adv']}", 120))
        fig.suptitle(_wrap(f"{view.model_name}: {n['attack']}; {eps_txt}; seed {n['seed']}", 150), fontsize=10)
    for ax in top:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def _class_order(scores: dict, top_k: int | None, label: int | None = None) -> list[int]:
    """Positions of the classes to draw: all of them when there are at most 8, else the top-k
    clean ∪ top-k perturbed, plus the true class when it is a candidate."""
    c, a = np.asarray(scores["clean"]), np.asarray(scores["adv"])
    if len(c) <= 8:
        return [int(i) for i in np.argsort(-c)]
    k = top_k or 6
    ids = []
    for i in list(np.argsort(-c)[:k]) + list(np.argsort(-a)[:k]):
        if int(i) not in ids:
            ids.append(int(i))
    if label is not None and label in scores["index"] and scores["index"].index(label) not in ids:
        ids.append(scores["index"].index(label))
    return ids


# ----------------------------------------------------------------------------------- widgets
class ExplorerUI:
    """The widget explorer (build it with :func:`explorer_widget`).

    Display the explorer itself (``display(ui)``: the widget with a static fallback, see the module
    docstring); ``widget`` is the bare ipywidgets box; ``controls`` the named controls; ``view``,
    ``figure`` and ``png`` the latest view / figure / its PNG; ``error`` the last error message (shown in the UI, not
    raised, so a bad path does not kill the session) or None. :meth:`set` changes controls in
    code and runs one update; :meth:`update` recomputes from the current control values."""

    def __init__(self, models: dict, *, top_k: int = 5, seed: int = 0, defaults: dict | None = None):
        import ipywidgets as w  # the widget toolkit: only this class (in Jupyter) needs it

        if not models:
            raise ZSLabError("explorer_widget needs at least one model (name -> ExplorerModel)")
        self.models = dict(models)
        self.top_k = int(top_k)
        self.view = None
        self.figure = None
        self.png: bytes | None = None  # the current figure as PNG
        self.error = None
        self.updates = 0
        self._hold = False
        first = next(iter(self.models.values()))
        style = {"description_width": "initial"}
        lay = w.Layout(width="360px")
        c = {}
        c["model"] = w.Dropdown(options=list(self.models), description="model", style=style, layout=lay)
        c["source"] = w.Dropdown(options=self._sources(first), value="test_unseen" if "test_unseen" in
                                 first.data.splits else list(first.data.splits)[0], description="image from",
                                 style=style, layout=lay)
        c["index"] = w.IntSlider(value=0, min=0, max=1, description="image index", style=style, layout=lay,
                                 continuous_update=False)
        c["path"] = w.Text(value="", placeholder="image file or folder (source: file/folder)",
                           description="path", style=style, layout=lay, continuous_update=False)
        c["attribute"] = w.Dropdown(options=[("(LAAT: no attributes)", 0)], description="attribute", style=style,
                                    layout=lay)
        c["mode"] = w.ToggleButtons(options=[("HAS perturbation", "has"), ("PGD attack", "attack")], value="has",
                                    description="mode", style=style)
        c["candidates"] = w.Dropdown(options=["unseen", "seen", "all"], value="unseen",
                                     description="predict among", style=style, layout=lay)
        for t in HAS_TERMS:
            # width "auto": the label takes the width of its text (a fixed width cut the longest,
            # "+λ_att_mag·mean(h)  attention magnitude (E…", in JupyterLab)
            c[f"use_{t}"] = w.Checkbox(value=True, description=TERM_LABELS[t], style=style,
                                       layout=w.Layout(width="auto"), indent=False)
        c["lambda_rob"] = w.FloatSlider(value=DEFAULT_LAMBDAS["rob"], min=0.0, max=5.0, step=0.05,
                                        description="λ_rob", style=style,
                                        continuous_update=False)
        c["lambda_rel"] = w.FloatLogSlider(value=DEFAULT_LAMBDAS["rel"], base=10, min=-3, max=1, step=0.1,
                                           description="λ_rel", style=style,
                                        continuous_update=False)
        c["lambda_att_mag"] = w.FloatLogSlider(value=DEFAULT_LAMBDAS["att_mag"], base=10, min=-6, max=0, step=0.1,
                                               description="λ_att_mag", style=style,
                                        continuous_update=False)
        c["lambda_att_ent"] = w.FloatSlider(value=DEFAULT_LAMBDAS["att_ent"], min=-2.0, max=2.0, step=0.05,
                                            description="λ_att_ent", style=style,
                                        continuous_update=False)
        c["eps"] = w.FloatSlider(value=8.0, min=0.0, max=32.0, step=0.5, description="ε (×1/255)", style=style,
                                 continuous_update=False)
        c["steps"] = w.IntSlider(value=3, min=0, max=20, description="steps T", style=style, continuous_update=False)
        c["seed"] = w.IntText(value=int(seed), description="seed", style=style, layout=w.Layout(width="160px"))
        self.controls = c
        self.status = w.HTML()
        self.output = w.Output()
        self._sync_model()
        if defaults:
            self._apply(defaults)
        for ctl in c.values():
            ctl.observe(self._on_change, names="value")
        terms_box = w.VBox([w.HBox([c[f"use_{t}"], c[f"lambda_{t}"]]) for t in HAS_TERMS])
        # the columns keep their natural widths (flex: none) and wrap under each other in a narrow
        # window, instead of the left one being squeezed under the right one
        left = w.VBox([c["model"], c["source"], c["index"], c["path"], c["attribute"], c["candidates"]],
                      layout=w.Layout(flex="0 0 auto", margin="0 16px 0 0"))
        right = w.VBox([c["mode"], terms_box, w.HBox([c["eps"], c["steps"], c["seed"]], layout=w.Layout(flex_flow="row wrap"))],
                       layout=w.Layout(flex="0 0 auto"))
        self.widget = w.VBox([w.HBox([left, right], layout=w.Layout(flex_flow="row wrap")), self.status, self.output])
        self.update()

    # ---------------------------------------------------------------- helpers
    @staticmethod
    def _sources(handle) -> list:
        return [s for s in ("test_unseen", "test_seen", "val_unseen", "val_seen", "train") if s in handle.data.splits
                and len(handle.data.splits[s])] + ["file/folder"]

    @property
    def handle(self):
        return self.models[self.controls["model"].value]

    def _sync_model(self) -> None:
        """Options that depend on the model: sources, index range, attributes, which controls apply."""
        c, h = self.controls, self.handle
        was = self._hold
        self._hold = True
        try:
            src = self._sources(h)
            if list(c["source"].options) != src:
                keep = c["source"].value if c["source"].value in src else src[0]
                c["source"].options = src
                c["source"].value = keep
            self._sync_index()
            apn = h.kind == "apn"
            if apn:
                opts = [(n, i) for i, n in enumerate(h.attribute_names)]
                if list(c["attribute"].options) != opts:
                    keep = c["attribute"].value if isinstance(c["attribute"].value, int) and \
                        c["attribute"].value < len(opts) else 0
                    c["attribute"].options = opts
                    c["attribute"].value = keep
            else:
                c["attribute"].options = [("(LAAT: no attributes)", 0)]
            for name, ctl in c.items():
                if name == "attribute" or name.startswith(("use_", "lambda_")):
                    ctl.disabled = not apn
            c["mode"].disabled = not apn
            for t in ("rob", "rel", "att_mag", "att_ent"):
                c[f"lambda_{t}"].disabled = not apn or not c[f"use_{t}"].value
        finally:
            self._hold = was

    def _sync_index(self) -> None:
        c, h = self.controls, self.handle
        if c["source"].value == "file/folder":
            p = Path(c["path"].value.strip()) if c["path"].value.strip() else None
            n = len(list_images(p)) if p is not None and p.is_dir() else 1
        else:
            n = len(h.data.splits[c["source"].value])
        c["index"].max = max(n - 1, 0)

    def _apply(self, values: dict) -> None:
        c = self.controls
        unknown = [k for k in values if k not in c]
        if unknown:
            raise ZSLabError(f"unknown explorer control(s) {unknown}; controls: {', '.join(c)}")
        # model first (it changes the other controls' options), then path before source/index
        order = sorted(values, key=lambda k: {"model": 0, "path": 1, "source": 2}.get(k, 3))
        for k in order:
            v = values[k]
            if k == "attribute" and isinstance(v, str):
                v = resolve_attribute(self.handle, v)
            if k == "path":
                v = "" if v is None else str(v)
            c[k].value = v
            if k in ("model", "path", "source"):
                self._sync_model()

    def _on_change(self, change) -> None:
        if self._hold:
            return
        owner = change["owner"]
        if owner in (self.controls["model"], self.controls["source"], self.controls["path"]) or \
                owner in [self.controls[f"use_{t}"] for t in ("rob", "rel", "att_mag", "att_ent")]:
            self._sync_model()
        self.update()

    def settings(self) -> dict:
        """The :func:`zslab.explore.compute_view` arguments the controls currently say."""
        c = self.controls
        return {"attribute": int(c["attribute"].value), "mode": c["mode"].value,
                "terms": tuple(t for t in HAS_TERMS if c[f"use_{t}"].value),
                "lambdas": {t: float(c[f"lambda_{t}"].value) for t in HAS_TERMS},
                "eps": float(c["eps"].value) / 255, "steps": int(c["steps"].value),
                "candidates": c["candidates"].value, "top_k": self.top_k, "seed": int(c["seed"].value)}

    # ---------------------------------------------------------------- public
    def update(self):
        """Recompute the view and the figure from the controls; returns the view (None on error,
        with :attr:`error` set and shown)."""
        from IPython.display import Image, display  # Jupyter's display: only the interactive widget needs it

        c, h = self.controls, self.handle
        self.updates += 1
        try:
            if c["source"].value == "file/folder":
                if not c["path"].value.strip():
                    raise ZSLabError("source 'file/folder' needs a path: type an image file or a folder of images")
                img = pick_image(h, index=c["index"].value, path=c["path"].value)
            else:
                img = pick_image(h, split=c["source"].value, index=c["index"].value)
            view = compute_view(h, img, **self.settings())
        except ZSLabError as e:
            self.error = str(e)
            self.status.value = f"<b style='color:#b00'>error:</b> {self.error}"
            return None
        self.error = None
        self.view = view
        self.figure = explorer_figure(view, top_k=self.top_k)
        # off pyplot's list of open figures: the inline backend would otherwise print a static copy of
        # it under the cell that made it (one that never changes); the Figure object stays usable
        plt.close(self.figure)
        self.png = figure_png(self.figure)
        n = view.numbers
        self.status.value = (f"prediction: <b>{n['pred_clean']}</b> → <b>{n['pred_adv']}</b>; max |δ| = "
                             f"{n['delta_linf_255']:.2f}/255 (update {self.updates})")
        with self.output:
            self.output.clear_output(wait=True)
            # a PNG, not the Figure: with a non-inline backend (MPLBACKEND=Agg under papermill) a Figure
            # displays as "<Figure size ...>" text, and the saved widget state would hold no picture
            display(Image(data=self.png, format="png"))
        return view

    def values(self) -> dict:
        """The controls' current values by name (what :meth:`set` and :meth:`copy` take)."""
        return {k: c.value for k, c in self.controls.items()}

    def copy(self, **values) -> "ExplorerUI":
        """A new explorer on the same models, starting from this one's control values with
        ``values`` changed (as for :meth:`set`), its first view computed. This one is left as it is:
        a notebook cell that shows ``ui.copy(...)`` keeps its own widget in the state it set, and
        the widget of an earlier cell does not jump to a later cell's settings."""
        inherited = self.values()
        target = self.models.get(values.get("model", inherited["model"]))
        if target is None or target.kind != "apn" or self.handle.kind != "apn" or \
                list(target.attribute_names) != list(self.handle.attribute_names):
            inherited.pop("attribute")  # an attribute index means something only on the same attribute list
        return ExplorerUI(self.models, top_k=self.top_k, seed=int(self.controls["seed"].value),
                          defaults={**inherited, **values})

    def describe(self) -> str:
        """One line naming the model and the settings of the current view."""
        c = self.controls
        src = f"file {c['path'].value!r}" if c["source"].value == "file/folder" else c["source"].value
        mode = "PGD attack" if c["mode"].value == "attack" or self.handle.kind != "apn" else "HAS perturbation"
        if mode == "HAS perturbation":
            off = [f"L_{t.upper()}" for t in HAS_TERMS if not c[f"use_{t}"].value]
            mode += f" ({', '.join(off)} off)" if off else ""
        return (f"explorer: model {c['model'].value}, image {src}[{c['index'].value}], {mode}, "
                f"ε = {c['eps'].value:g}/255, {c['steps'].value} steps, seed {c['seed'].value}")

    def _repr_mimebundle_(self, include=None, exclude=None):
        """The live widget, with the current figure (PNG, and HTML with a note) as alternatives for
        a viewer that cannot show widgets (see the module docstring)."""
        data = dict(self.widget._repr_mimebundle_(include=include, exclude=exclude))
        if self.error:  # the last update failed: say so rather than show an older picture
            data["text/plain"] = f"{self.describe()}: error: {self.error}"
            return data
        note = (f"{self.describe()}. A static picture of this cell's view: run the cell (with the cells above "
                f"it) to get the interactive controls, or, for a notebook you made yourself, trust it (JupyterLab "
                f"command palette: Trust Notebook) to see the saved controls.")
        data["text/plain"] = note
        if self.png is not None:
            b64 = base64.b64encode(self.png).decode("ascii")
            data["image/png"] = b64
            data["text/html"] = (f'<div class="zslab-explorer-static"><img alt="{html.escape(self.describe())}" '
                                 f'src="data:image/png;base64,{b64}" style="max-width:100%">'
                                 f"<p><em>{html.escape(note)}</em></p></div>")
        return data

    def set(self, **values):
        """Set controls by name (``eps`` in /255 units, ``attribute`` as index or name, ``model``
        a key of the models dict, ``path`` a file or folder, ``use_rob=False`` to switch a term
        off, ...) and run exactly one update; returns the new view."""
        self._hold = True
        try:
            self._apply(values)
        finally:
            self._hold = False
        self._sync_model()
        return self.update()


def explorer_widget(models: dict, *, top_k: int = 5, seed: int = 0, **defaults) -> ExplorerUI:
    """Build the explorer UI for ``models`` (``{display name: ExplorerModel}``, from
    :func:`zslab.explore.load_model`). ``defaults``: initial control values (as for
    :meth:`ExplorerUI.set`). The first view is computed at once; show it with ``display(ui)`` (the
    widget with a static fallback; ``ui.widget`` is the bare widget)."""
    return ExplorerUI(models, top_k=top_k, seed=seed, defaults=defaults or None)
