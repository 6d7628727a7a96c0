"""Ray Tune integration: `hydra/sweeper=tune` studies (sweeper.py) and the rlrun Trainable (trainable.py).

Imported only by a Tune study or a Python user: the rest of rlrun never loads Tune.
"""

from rlrun.tune.trainable import RLrunTrainable, make_trainable

__all__ = ["RLrunTrainable", "make_trainable"]
