"""Small building blocks shared by the models: activations by name and the MLP."""

from torch import nn

from .registry import Registry

ACTIVATIONS = Registry("activation")
ACTIVATIONS.register("tanh")(nn.Tanh)
ACTIVATIONS.register("relu")(nn.ReLU)
ACTIVATIONS.register("gelu")(nn.GELU)
ACTIVATIONS.register("elu")(nn.ELU)
ACTIVATIONS.register("softplus")(nn.Softplus)


class MLP(nn.Sequential):
    """in -> hidden[0] -> ... -> hidden[-1] -> out, activation after every hidden layer."""

    def __init__(self, in_features, hidden, out_features, activation="tanh"):
        layers, width = [], in_features
        for h in hidden:
            layers += [nn.Linear(width, h), ACTIVATIONS.get(activation)()]
            width = h
        layers.append(nn.Linear(width, out_features))
        super().__init__(*layers)
