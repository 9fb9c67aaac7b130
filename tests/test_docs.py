"""The documentation: README size, links, and the pages generated from the code and the cards.

The site itself is built by ``make test`` / ``make docs`` (``mkdocs build --strict``); these tests
check what a strict build cannot: that the generated pages hold the registry's and the cards'
numbers, and that README.md and docs/ link only to files that exist (also on GitHub).
"""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


@pytest.fixture(scope="module")
def gen():
    spec = importlib.util.spec_from_file_location("zslab_gen_docs", ROOT / "tools" / "gen_docs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def _links(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks hold no links
    return LINK.findall(text)


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; the rest belongs in docs/"


def _generated(page: Path, target: str) -> bool:
    """A file the docs hook adds to the site: ``notebooks/NAME.ipynb`` (tools/gen_docs.py on_files)."""
    rel = (page.parent / target).resolve()
    try:
        rel = rel.relative_to(DOCS.resolve())
    except ValueError:
        return False
    return rel.parent.as_posix() == "notebooks" and rel.suffix == ".ipynb" and (ROOT / "notebooks" / rel.name).is_file()


@pytest.mark.parametrize("path", [ROOT / "README.md", *_pages()], ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_exist(path):
    bad = []
    for target in _links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # http:, mailto:, an anchor on the same page
        file = target.split("#", 1)[0]
        if file.startswith("/"):
            bad.append(f"{target} (absolute)")
        elif not (path.parent / file).exists() and not _generated(path, file):
            bad.append(target)
    assert not bad, f"{path.relative_to(ROOT)} links to missing files: {bad}"


def test_docs_do_not_link_outside_docs():
    """A link out of docs/ is a broken link in the built site (and ../shared is not the user's)."""
    for page in _pages():
        for target in _links(page):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue
            resolved = (page.parent / target.split("#", 1)[0]).resolve()
            assert DOCS.resolve() in resolved.parents or resolved == DOCS.resolve(), \
                f"{page.relative_to(ROOT)} links outside docs/: {target}"


def test_every_page_is_in_the_nav():
    nav = json.dumps(yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))["nav"])
    missing = [str(p.relative_to(DOCS)) for p in _pages() if str(p.relative_to(DOCS)) not in nav]
    assert not missing, f"pages not in mkdocs.yml nav: {missing}"


def test_site_is_offline():
    cfg = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert cfg["theme"]["font"] is False  # no Google fonts at build or view time
    plugins = [p if isinstance(p, str) else next(iter(p)) for p in cfg.get("plugins", [])]
    assert "social" not in plugins
    for key in ("extra_javascript", "extra_css"):
        assert not [u for u in cfg.get(key, []) if "://" in str(u)], f"{key} loads from the network"


def test_recipes_page_holds_the_registry(gen):
    from zslab.config.resolve import resolve

    page = gen.recipes_markdown()
    # the example of the issue: the smoke preset's train.epochs for apn, and its source
    assert "| **`train.epochs`** | `4` | `preset:smoke` |" in page
    for method in ("apn", "has", "laat"):
        for preset in ("smoke", "full"):
            res = resolve(method, "shapes", preset, allow_missing=True)
            for key, src in res.sources.items():
                value = gen._leaves(res)[key]
                assert f"`{key}`" in page and gen._code(value, key) in page and f"`{src}`" in page, (method, preset, key)
    assert "preset:paper" in page and "`cifar-fs`" in page


def test_recipes_page_has_each_preset_table(gen):
    from zslab.config.resolve import resolve

    page = gen.recipes_markdown()
    res = resolve("laat", "shapes", "smoke", allow_missing=True)
    table = gen.recipe_table(res)
    assert gen._indent(table) in page  # the whole table, row for row (inside its tab)


def test_studies_page_holds_every_study(gen):
    from zslab.config.resolve import study_presets

    page = gen.studies_markdown()
    for study in ("has", "laat", "cross_paper", "laat_anchors"):
        assert f"### `{study}`" in page
        for preset in study_presets(study):
            assert f"`{preset}`" in page


def test_results_pages_show_the_cards_numbers(gen):
    card = json.loads((ROOT / "results" / "has_table1.json").read_text())
    s = card["results"]["summary"]["has"]["zsl_t1"]
    expected = f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}"
    assert expected == "83.7 ± 2.0"
    page = gen.expand((DOCS / "results" / "has-table1.md").read_text(encoding="utf-8"))
    generated = gen.card_markdown("has_table1")
    assert generated in page
    assert f"| `has` | has | {expected} |" in generated  # mean ± std over the seeds, in the card's table
    assert "seeds | 0, 1, 2 (n = 3)" in generated
    assert card["provenance"]["cpu_id"] in generated  # the machine
    for row in card["results"]["rows"]:  # every per-seed number
        assert f"{100 * row['gzsl_h']:.1f}" in generated


@pytest.mark.parametrize("path", sorted((ROOT / "results").glob("*.json")), ids=lambda p: p.stem)
def test_every_card_renders_and_has_a_page(gen, path):
    text = gen.card_markdown(path.stem)
    card = json.loads(path.read_text())
    assert f"results/{path.stem}.json" in text and card["command"].split(" && ")[0] in text
    pages = " ".join(p.read_text(encoding="utf-8") for p in (DOCS / "results").glob("*.md"))
    assert re.search(rf"<!--\s*zslab:card {re.escape(path.stem)}[\s>]", pages), \
        f"no page of docs/results/ shows card {path.stem}"


def test_card_statistics_match_their_rendering(gen):
    """Every mean ± std a card's summary holds is on its page as the page formats it."""
    for path in sorted((ROOT / "results").glob("*.json")):
        text = gen.card_markdown(path.stem)
        res = json.loads(path.read_text())["results"]
        for key in ("summary", "table3", "robustness", "spread"):
            for entry in (res.get(key) or {}).values():
                for metric, stat in entry.items():
                    if gen._is_stat(stat):
                        assert gen._fmt_stat(stat, metric) in text, (path.stem, key, metric)


def test_cli_page_covers_every_command(gen):
    from zslab.cli import build_parser

    page = gen.cli_markdown()
    for name, sub in gen._subparsers(build_parser()):
        assert f"`zslab {name}`" in page
        for name2, _ in gen._subparsers(sub):
            assert f"`zslab {name} {name2}`" in page
    assert "usage: python -m bench" in page and "python -m zslab.experiments.study_queue" in page


def test_every_marker_expands(gen):
    for page in _pages():
        out = gen.expand(page.read_text(encoding="utf-8"))
        assert "<!-- zslab:" not in out, page
    with pytest.raises(ValueError):
        gen.expand("<!-- zslab:nonsense -->")


def test_api_pages_cover_every_module(gen):
    """Every public zslab module is on an API page (the pages find submodules themselves)."""
    covered = set()
    for page in (DOCS / "api").glob("*.md"):
        for m in re.findall(r"<!--\s*zslab:api ([^>]*?)\s*-->", page.read_text(encoding="utf-8")):
            for name in m.split():
                covered.update(gen.api_modules(name))
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts) for p in (ROOT / "zslab").rglob("*.py")
               if not any(part.startswith("_") for part in p.relative_to(ROOT / "zslab").parts)}
    modules |= {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "zslab").rglob("__init__.py")}
    skip = {"zslab", "zslab.cli", "zslab.cli_anchors"}  # the CLI page documents these
    missing = sorted(modules - covered - skip)
    assert not missing, f"modules on no API page: {missing}"


def test_notebook_gallery_lists_every_notebook():
    page = (DOCS / "notebooks.md").read_text(encoding="utf-8")
    missing = [nb.stem for nb in (ROOT / "notebooks").glob("*.ipynb") if f"`{nb.stem}`" not in page]
    assert not missing, f"docs/notebooks.md does not list {missing}"
    for png in (DOCS / "gallery").glob("*.png"):
        assert f"gallery/{png.name}" in page, f"docs/notebooks.md does not show {png.name}"


def test_notebooks_page_links_every_notebook_and_the_site_serves_them(gen, tmp_path):
    """The notebooks page links each notebook's download, and the hook adds exactly those files."""
    page = (DOCS / "notebooks.md").read_text(encoding="utf-8")
    from mkdocs.config import load_config
    from mkdocs.structure.files import Files

    cfg = load_config(str(ROOT / "mkdocs.yml"), site_dir=str(tmp_path / "site"))
    cfg.plugins._current_plugin = "gen_docs"  # what mkdocs sets while it runs a hook's event
    files = gen.on_files(Files([]), config=cfg)
    served = sorted(f.src_uri for f in files)
    want = sorted(f"notebooks/{nb.name}" for nb in (ROOT / "notebooks").glob("*.ipynb"))
    assert served == want and want
    for uri in want:
        assert f"]({uri})" in page, f"docs/notebooks.md does not link {uri}"
    # the explorer's static views are on the page
    for view in ("has", "has_no_rob", "attack", "apn", "laat"):
        assert f"gallery/30_explorer_{view}_view.png" in page
