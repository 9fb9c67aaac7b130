"""The methods: each owns its model glue, losses and training step, and is registered here
explicitly (the engine, :mod:`zslab.train.engine`, looks methods up in :data:`STRATEGIES`).

* ``apn``  — :class:`zslab.methods.apn.APNStrategy` (HAS paper §3.2, the baseline);
* ``has``  — :class:`zslab.methods.has.HASStrategy` and the HAS generator (HAS paper §3.3–3.6, Alg. 1);
* ``laat`` — :class:`zslab.methods.laat.LAATStrategy` (LAAT paper §3.2–3.6: anchors, A-CE, smoothness, PGD-AT).
"""
from zslab.methods.apn import APNStrategy
from zslab.methods.base import Strategy
from zslab.methods.has import HASStrategy
from zslab.methods.laat import LAATStrategy

#: method name -> strategy class (the ``run.method`` config key)
STRATEGIES = {"apn": APNStrategy, "has": HASStrategy, "laat": LAATStrategy}

__all__ = ["STRATEGIES", "Strategy", "APNStrategy", "HASStrategy", "LAATStrategy"]
