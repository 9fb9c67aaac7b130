"""Where the package looks for real data: $ZSLAB_DATA only, never a folder outside the repository."""
import re
from pathlib import Path

import pytest

from zslab import ZSLabError
from zslab.experiments import data_root, paths

PACKAGE = Path(__file__).resolve().parents[1] / "zslab"


@pytest.fixture
def no_data_env(monkeypatch):
    for var in (paths.DATA_ENV, *paths.DATA_ENV_ALIASES):
        monkeypatch.delenv(var, raising=False)


def test_data_root_reads_zslab_data(tmp_path, monkeypatch, no_data_env):
    monkeypatch.setenv("ZSLAB_DATA", str(tmp_path))
    assert data_root() == tmp_path
    assert data_root("cifar10") == tmp_path / "cifar10"  # named whether or not it exists
    monkeypatch.setenv("ZSLAB_SHARED_DATA", str(tmp_path / "old"))
    assert data_root("xlsa17") == tmp_path / "xlsa17"  # ZSLAB_DATA wins over the old spelling


def test_data_root_old_spelling_and_none(tmp_path, monkeypatch, no_data_env):
    assert data_root() is None and data_root("cifar10") is None  # no guessed default folder
    monkeypatch.setenv("ZSLAB_DATA", "")
    assert data_root("cifar10") is None
    monkeypatch.setenv("ZSLAB_SHARED_DATA", str(tmp_path))
    assert data_root("cifar10") == tmp_path / "cifar10"


def test_callers_say_how_to_point_at_the_data(tmp_path, monkeypatch, no_data_env):
    from zslab.experiments import laat_anchors as la
    from zslab.experiments import laat_study as ls
    from zslab.experiments import xp_attribute_anchors as xa

    with pytest.raises(ZSLabError, match=r"ZSLAB_DATA is not set.*set ZSLAB_DATA=/path/to/data.*data_root="):
        ls.study_config("full")
    srcs, msg = la.clip_anchor_sources()
    assert srcs == [] and "ZSLAB_DATA is not set" in msg and "data_root=" in msg
    stats, notes = xa.real_cosine_stats()
    assert stats == {} and len(notes) == 1 and "ZSLAB_DATA" in notes[0]
    # with the variable set, each looks in its own sub-folder and names it when it is missing
    monkeypatch.setenv("ZSLAB_DATA", str(tmp_path))
    with pytest.raises(ZSLabError, match="CIFAR-10 image folders") as e:
        ls.study_config("full")
    assert str(tmp_path / "cifar10") in str(e.value)
    (tmp_path / "cifar10" / "train").mkdir(parents=True)
    (tmp_path / "cifar10" / "test").mkdir()
    assert ls.study_config("full")["data"]["root"] == str((tmp_path / "cifar10").resolve())
    assert str(tmp_path / "clip_text_anchors") in la.clip_anchor_sources()[1]
    assert str(tmp_path / "xlsa17" / "AWA2") in xa.real_cosine_stats(names=("AWA2",))[1][0]


def test_no_module_points_outside_the_repository():
    """Package code cites the papers (section, equation), not files beside the checkout."""
    pattern = re.compile(r"\.\./shared|GUIDE")
    hits = [f"{p.relative_to(PACKAGE.parent)}:{i}: {line.strip()}"
            for p in sorted(PACKAGE.rglob("*.py"))
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert not hits, "\n".join(hits)
