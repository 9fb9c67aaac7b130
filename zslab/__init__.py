"""zslab: zero-shot learning and adversarial training, reproduced (HAS, LAAT).

Data flows one way: data -> models -> (losses, attacks) -> training -> evaluation -> figures.
"""

__version__ = "0.1.0"


class ZSLabError(Exception):
    """A user-facing error: the message names the problem and what to do about it."""
