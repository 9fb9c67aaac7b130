"""environment.yml's pip list must agree with pyproject.toml (runtime + dev extras)."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _norm(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def test_environment_yml_matches_pyproject():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    want = dict(_norm(r) for r in py["dependencies"] + py["optional-dependencies"]["dev"])
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, l in enumerate(lines) if l.strip() == "- pip:")
    have = {}
    for l in lines[start + 1:]:
        s = l.strip()
        if not s.startswith("- "):
            break
        item = s[2:]
        if item.startswith("-e"):
            continue
        k, v = _norm(item)
        have[k] = v
    assert have == want


def test_torch_pair_pinned_together():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = dict(_norm(d) for d in deps)
    assert pins["torch"] == "==2.14.1" and pins["torchvision"] == "==0.29.1"
    import torch
    import torchvision
    assert torch.__version__.startswith("2.14.1") and torchvision.__version__.startswith("0.29.1")


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make demo" in readme
    assert re.search(r"^make test$", ci, re.M)
