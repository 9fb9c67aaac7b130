"""One typed configuration for every run (schema, recipes, flat-key aliases, provenance).

* :mod:`zslab.config.schema` — the nested pydantic schema (sections run, data, model, train,
  method, anchors, attack, eval);
* :mod:`zslab.config.aliases` — the one table from the old flat keys to the nested ones;
* :mod:`zslab.config.resolve` — composition defaults → method → dataset → preset → ``--set``
  from the recipe registry ``zslab/config/recipes/``, with every value's source.
"""
from zslab.config.resolve import (ConfigError, EngineConfig, Resolved, from_document, from_flat, make_engine_config,
                                  normalize_key, parse_value, recipe, resolve, to_flat)

__all__ = ["ConfigError", "EngineConfig", "Resolved", "from_document", "from_flat", "make_engine_config",
           "normalize_key", "parse_value", "recipe", "resolve", "to_flat"]
