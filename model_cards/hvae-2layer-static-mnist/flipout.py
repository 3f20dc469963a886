"""Flipout: one shared weight perturbation, decorrelated across the examples of a batch.

Wen, Vicol, Ba, Tran & Grosse 2018, "Flipout: Efficient Pseudo-Independent Weight Perturbations
on Mini-Batches". With W = mu + dW, dW = sigma (.) eps drawn once per batch and symmetric about 0,
example b uses  W_b = mu + dW (.) (r_b s_b^T)  with independent random signs r_b (outputs) and s_b
(inputs). Each W_b has exactly the distribution of W, so the gradient is unbiased, while the
perturbations of different examples are uncorrelated. The product is computed without forming W_b:

    linear:  y_b = mu x_b + r_b (.) (dW (s_b (.) x_b))
    conv2d:  the same with one sign per (example, input channel) and per (example, output channel),
             so W_b stays a sign-flipped copy of one kernel (a sign per pixel would not be).
"""

import torch
import torch.nn.functional as F


def random_signs(shape, like, generator=None):
    """Independent +-1 entries of the given shape, dtype and device of ``like``."""
    bits = torch.randint(0, 2, shape, generator=generator, device=like.device)
    return (2 * bits - 1).to(like.dtype)


def flipout_linear(x, weight_loc, weight_perturbation, bias, input_signs, output_signs):
    """Flipout pre-activations for x (B, in); signs of shape (B, in) and (B, out)."""
    return F.linear(x, weight_loc, bias) + output_signs * F.linear(x * input_signs, weight_perturbation)


def flipout_conv2d(x, weight_loc, weight_perturbation, bias, stride, padding, input_signs, output_signs):
    """Flipout convolution for x (B, C_in, H, W); signs of shape (B, C_in) and (B, C_out)."""
    mean = F.conv2d(x, weight_loc, bias, stride, padding)
    perturbed = F.conv2d(x * input_signs[:, :, None, None], weight_perturbation, None, stride, padding)
    return mean + output_signs[:, :, None, None] * perturbed
