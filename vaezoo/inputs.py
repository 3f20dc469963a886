"""Input checks shared by every model: a wrong input raises a ValueError that says what was expected."""

import torch


def flatten_images(pixel_values, num_pixels, name="pixel_values"):
    """Validate a batch of images and return it flattened to (B, num_pixels).

    Accepted shapes: (B, D), (B, H, W) or (B, C, H, W) with C*H*W == D == num_pixels; a
    floating-point dtype; finite values in [0, 1]; at least one example.
    """
    if not torch.is_tensor(pixel_values):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(pixel_values).__name__}")
    if not torch.is_floating_point(pixel_values):
        raise ValueError(
            f"{name} must be a floating-point tensor with values in [0, 1], got dtype {pixel_values.dtype} "
            "(convert uint8 images with x.float() / 255)"
        )
    if pixel_values.dim() not in (2, 3, 4) or pixel_values.shape[1:].numel() != num_pixels:
        raise ValueError(
            f"{name} must have shape (batch, {num_pixels}) or (batch, [channels,] height, width) with "
            f"{num_pixels} values per example, got shape {tuple(pixel_values.shape)}"
        )
    if pixel_values.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(pixel_values.shape)})")
    if not torch.isfinite(pixel_values).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if pixel_values.min() < 0 or pixel_values.max() > 1:
        raise ValueError(
            f"{name} must lie in [0, 1], got range [{pixel_values.min().item():.4g}, {pixel_values.max().item():.4g}]"
        )
    return pixel_values.reshape(pixel_values.shape[0], num_pixels)


def check_labels(labels, num_classes, batch_size):
    """Validate integer class labels of shape (B,) in [0, num_classes)."""
    if not torch.is_tensor(labels) or labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise ValueError(f"labels must be an integer tensor, got {getattr(labels, 'dtype', type(labels).__name__)}")
    if labels.shape != (batch_size,):
        raise ValueError(f"labels must have shape ({batch_size},), got {tuple(labels.shape)}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes - 1}], got range [{labels.min()}, {labels.max()}]")
    return labels.long()
