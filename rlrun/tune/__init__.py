"""Ray Tune integration: `hydra/sweeper=tune` studies (sweeper.py) and the rlrun Trainable (trainable.py).

Imported only by a Tune study or a Python user: the rest of rlrun never loads Tune. The Trainable is imported
when first asked for (rlrun/lazy.py), so a study checks its settings and first trial before paying for Ray
Tune's import (~1.8 s): a bad setting is a one-line error at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers and the API reference (mkdocstrings reads the source, not __getattr__)
    from rlrun.tune.trainable import RLrunTrainable, make_trainable

__all__ = ["RLrunTrainable", "make_trainable"]

_EXPORTS = {name: "rlrun.tune.trainable" for name in __all__}


def __getattr__(name: str) -> Any:
    from rlrun.lazy import lazy_attribute

    return lazy_attribute(__name__, _EXPORTS, name)
