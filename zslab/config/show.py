"""``zslab config show``: the resolved configuration as a table, each value with its source."""
from __future__ import annotations

import json

from zslab.config.resolve import LAYERS, Resolved, _leaves
from zslab.config.schema import section_model


def description(path: str, dataset: str) -> str:
    """The schema's one-line description of a dotted key ("" when it has none)."""
    parts = path.split(".")
    for cut in (2, 1):
        sec = ".".join(parts[:cut])
        model = section_model(sec, dataset)
        if model is not None and len(parts) > cut and parts[cut] in model.model_fields:
            return model.model_fields[parts[cut]].description or ""
    return ""


def format_table(res: Resolved) -> str:
    """One line per key: ``key = value   [source]  description``, grouped by section."""
    leaves = _leaves(res.doc)
    width = max(len(k) for k in leaves) + 2
    vwidth = min(28, max(len(json.dumps(v)) for v in leaves.values()) + 1)
    swidth = max(len(s) for s in res.sources.values()) + 2 if res.sources else 10
    lines = [f"# zslab config: method {res.method}, dataset {res.dataset}, preset {res.preset}",
             f"# layers, later wins: {' -> '.join(LAYERS)}"]
    section = None
    for key, value in leaves.items():
        sec = key.split(".")[0]
        if sec != section:
            lines.append(f"[{sec}]")
            section = sec
        v = json.dumps(value)
        src = f"[{res.sources.get(key, 'default')}]"
        lines.append(f"  {key:<{width}}= {v:<{vwidth}} {src:<{swidth}} "
                     f"{description(key, res.dataset)}".rstrip())
    return "\n".join(lines)
