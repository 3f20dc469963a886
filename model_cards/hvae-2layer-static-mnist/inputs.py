"""Input checks shared by every model: a wrong input raises a ValueError that says what was expected."""

import math

import torch


def flatten_images(pixel_values, num_pixels, name="pixel_values", dtype=None):
    """Validate a batch of images and return it flattened to (B, num_pixels).

    Accepted: shape (B, D) with D == num_pixels, (B, H, H) with H*H == D, or (B, C, H, H) with
    C*H*H == D (images are square, so a channels-last (B, H, W, C) batch is refused instead of
    being silently scrambled); a floating-point dtype, equal to ``dtype`` when given (models pass
    their own, so a float64 batch for a float32 model is a ValueError, not a matmul error); finite
    values in [0, 1]; at least one example.
    """
    if not torch.is_tensor(pixel_values):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(pixel_values).__name__}")
    if not torch.is_floating_point(pixel_values):
        raise ValueError(
            f"{name} must be a floating-point tensor with values in [0, 1], got dtype {pixel_values.dtype} "
            "(convert uint8 images with x.float() / 255)"
        )
    if dtype is not None and pixel_values.dtype != dtype:
        raise ValueError(f"{name} must have the model's dtype {dtype}, got {pixel_values.dtype} (use x.to({dtype}))")
    shape = tuple(pixel_values.shape)
    square = len(shape) == 2 or (len(shape) in (3, 4) and shape[-1] == shape[-2])
    if len(shape) not in (2, 3, 4) or not square or math.prod(shape[1:]) != num_pixels:
        raise ValueError(
            f"{name} must have shape (batch, {num_pixels}) or (batch, [channels,] height, width) with square "
            f"images of {num_pixels} values per example, got shape {shape}"
        )
    if shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {shape}); expected at least one example")
    if not torch.isfinite(pixel_values).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if pixel_values.min() < 0 or pixel_values.max() > 1:
        raise ValueError(
            f"{name} must lie in [0, 1], got range [{pixel_values.min().item():.4g}, {pixel_values.max().item():.4g}]"
        )
    return pixel_values.reshape(shape[0], num_pixels)


def check_labels(labels, num_classes, batch_size):
    """Validate integer class labels of shape (B,) in [0, num_classes)."""
    if not torch.is_tensor(labels) or labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise ValueError(f"labels must be an integer tensor, got {getattr(labels, 'dtype', type(labels).__name__)}")
    if labels.shape != (batch_size,):
        raise ValueError(f"labels must have shape ({batch_size},), got {tuple(labels.shape)}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes - 1}], got range [{labels.min().item()}, {labels.max().item()}]"
        )
    return labels.long()
