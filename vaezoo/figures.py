"""Figures for model cards (PNG via matplotlib's Agg backend): sample grids, reconstructions,
training curves. Each function draws from a seeded generator so a card rebuild gives the same image."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def _grid(images, rows):
    """(n, C, H, W) in [0, 1] -> one (rows*H, cols*W) array (first channel)."""
    n, _, h, w = images.shape
    cols = -(-n // rows)
    canvas = torch.ones(rows * h, cols * w)
    for i in range(n):
        r, c = divmod(i, cols)
        canvas[r * h : (r + 1) * h, c * w : (c + 1) * w] = images[i, 0]
    return canvas.numpy()


def save_image_grid(images, path, rows, title):
    fig, ax = plt.subplots(figsize=(images.shape[0] / rows * 0.6 + 0.4, rows * 0.6 + 0.5), dpi=100)
    ax.imshow(_grid(images.float().cpu(), rows), cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


@torch.no_grad()
def sample_grid(model, path, num=64, seed=0):
    """Decoder means at z ~ p(z)."""
    images = model.sample(num, generator=torch.Generator().manual_seed(seed))
    save_image_grid(images, path, rows=8, title=f"samples (decoder mean, z ~ prior, seed {seed})")


@torch.no_grad()
def reconstruction_grid(model, data, path, num=16, seed=0):
    """Top rows: test images; bottom rows: decoder means at z = posterior mean."""
    x = data.pixels(data.images[:num], generator=torch.Generator().manual_seed(seed))
    recon = model.decode(model.encode(x).mean).mean
    c, s = model.config.num_channels, model.config.image_size
    images = torch.cat([x, recon]).reshape(-1, c, s, s)
    save_image_grid(images, path, rows=4, title="test images (top) and reconstructions at the posterior mean")


def training_curves(history, path, keys):
    """Validation metrics over training steps, one panel per metric."""
    keys = [k for k in keys if any(k in h for h in history)]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 2.8), dpi=100, squeeze=False)
    steps = [h["step"] for h in history]
    for ax, key in zip(axes[0], keys):
        ax.plot(steps, [h.get(key) for h in history], marker=".")
        ax.set_xlabel("step")
        ax.set_title(f"validation {key}", fontsize=9)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
