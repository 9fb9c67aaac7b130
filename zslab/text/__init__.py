"""Text encoders -> class anchors for LAAT (LAAT Sec. 3.2, "Text Anchor Extraction").

Entry point: :func:`class_anchors` (``spec`` = ``"minilm"``, ``"clip:ARCH:PATH"`` or
``"file:PATH.npy[:CLASSES.txt]"``).  Encoders live in :mod:`zslab.text.encoders`, spec parsing,
prompts, precomputed files and the cache in :mod:`zslab.text.sources`.
"""
from zslab.text.sources import (
    DEFAULT_PROMPT,
    SPEC_FORMS,
    class_anchors,
    default_cache_dir,
    encode_class_names,
    file_anchors,
    find_class_list,
    format_prompts,
    load_encoder,
    parse_spec,
)

__all__ = [
    "DEFAULT_PROMPT",
    "SPEC_FORMS",
    "class_anchors",
    "default_cache_dir",
    "encode_class_names",
    "file_anchors",
    "find_class_list",
    "format_prompts",
    "load_encoder",
    "parse_spec",
]
