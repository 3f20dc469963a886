"""vaezoo: pretrained variational models (VAEs, hierarchical VAEs, VIB, BNNs) as transformers models."""

from transformers import AutoConfig, AutoModel

from .configuration_bnn import BNNConfig
from .configuration_hvae import HVAEConfig
from .configuration_vae import VAEConfig
from .configuration_vib import VIBConfig
from .distributions import DiagonalGaussian, SlashedNormal, StandardNormal
from .estimators import ESTIMATORS
from .modeling_bnn import BNNModel, ClassifierOutput
from .modeling_hvae import HVAEModel, HVAEOutput
from .modeling_vae import VAEModel, VAEOutput
from .modeling_vib import VIBModel, VIBOutput
from .parameterizations import PARAMETERIZATIONS
from .stdplus import log_stdplus, stdplus

__version__ = "0.1.0"

# Native loading route: AutoModel.from_pretrained(dir) after `import vaezoo`.
for _config, _model in ((VAEConfig, VAEModel), (HVAEConfig, HVAEModel), (BNNConfig, BNNModel), (VIBConfig, VIBModel)):
    AutoConfig.register(_config.model_type, _config)
    AutoModel.register(_config, _model)

__all__ = [
    "VAEConfig",
    "VAEModel",
    "VAEOutput",
    "HVAEConfig",
    "HVAEModel",
    "HVAEOutput",
    "BNNConfig",
    "BNNModel",
    "ClassifierOutput",
    "VIBConfig",
    "VIBModel",
    "VIBOutput",
    "ESTIMATORS",
    "DiagonalGaussian",
    "SlashedNormal",
    "StandardNormal",
    "PARAMETERIZATIONS",
    "stdplus",
    "log_stdplus",
]
