"""Bayesian neural-network classifier: mean-field Gaussian weights trained on the ELBO.

Blundell et al. 2015 ("Weight Uncertainty in Neural Networks"); gradient estimators RT, LRT
(Kingma et al. 2015), Flipout (Wen et al. 2018), R2-G2 (Lam et al. 2025) and the score function,
chosen by ``config.estimator``. Prediction averages the class probabilities of S weight draws:
log p(y | x) ~= log (1/S) sum_s softmax(f(x; W_s)).
"""

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .bayes_layers import BayesianLayer
from .bayes_networks import BNN_ARCHITECTURES
from .bounds import LogMeanExpAccumulator
from .configuration_bnn import BNNConfig
from .inputs import check_labels, flatten_images
from .score_function import score_function_surrogate


@dataclass
class ClassifierOutput(ModelOutput):
    """``logits`` (B, C) of this forward's single posterior sample; ``nll`` the mean data term
    (cross-entropy, nats); ``kl`` the weights' total KL (nats); ``loss = nll + kl / N_train``."""

    loss: Optional[torch.Tensor] = None
    logits: Optional[torch.Tensor] = None
    nll: Optional[torch.Tensor] = None
    kl: Optional[torch.Tensor] = None
    accuracy: Optional[torch.Tensor] = None


class BNNPreTrainedModel(PreTrainedModel):
    config_class = BNNConfig
    base_model_prefix = "bnn"
    main_input_name = "pixel_values"
    evaluation_kind = "classifier"

    def _init_weights(self, module):
        # from_pretrained builds on the meta device: every tensor not in the checkpoint must be set here.
        if isinstance(module, BayesianLayer):
            module.initialize(init)


class BNNModel(BNNPreTrainedModel):
    def __init__(self, config: BNNConfig):
        super().__init__(config)
        self.network = BNN_ARCHITECTURES.get(config.architecture)(config)
        self.post_init()

    def kl(self):
        """KL(q(W) || p(W)) summed over every Bayesian layer (nats, closed form)."""
        return sum(layer.kl() for layer in self.network.bayesian_layers())

    def _logits(self, pixel_values, generator):
        return self.network(flatten_images(pixel_values, self.config.num_pixels, dtype=self.dtype), generator)

    def forward(self, pixel_values, labels=None, generator=None, return_dict=True):
        logits = self._logits(pixel_values, generator)
        kl = self.kl()
        loss = nll = accuracy = None
        if labels is not None:
            labels = check_labels(labels, self.config.num_classes, logits.shape[0])
            nll_per_example = F.cross_entropy(logits, labels, reduction="none")
            nll = nll_per_example.mean()
            loss = nll + kl / self.config.num_train_examples
            loss = loss + score_function_surrogate(self, nll_per_example)
            accuracy = (logits.argmax(-1) == labels).float().mean()
        out = ClassifierOutput(loss=loss, logits=logits, nll=nll, kl=kl, accuracy=accuracy)
        return out if return_dict else out.to_tuple()

    def predictive_log_probs(self, pixel_values, num_samples, generator=None):
        """log (1/S) sum_s softmax(logits_s), shape (B, C), over S independent weight draws."""
        accumulator = LogMeanExpAccumulator()
        for _ in range(num_samples):
            accumulator.update(F.log_softmax(self._logits(pixel_values, generator), -1).unsqueeze(0))
        return accumulator.value()
