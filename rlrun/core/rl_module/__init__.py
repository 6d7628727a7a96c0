"""RLModules: the networks a policy is made of, and their action distributions."""

from rlrun.core.rl_module.default_models import DefaultActorCriticModule
from rlrun.core.rl_module.distributions import Categorical, DiagGaussian, Distribution
from rlrun.core.rl_module.rl_module import MultiRLModule, RLModule
from rlrun.core.rl_module.spec import RLModuleSpec

__all__ = ["Categorical", "DefaultActorCriticModule", "DiagGaussian", "Distribution", "MultiRLModule", "RLModule",
           "RLModuleSpec"]
