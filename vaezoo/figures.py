"""Figures for model cards (PNG via matplotlib's Agg backend): sample grids, reconstructions,
training curves, the rate-distortion plane, reliability diagrams. Each function draws from a seeded
generator (or from saved numbers only), so a card rebuild gives the same image."""

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
    """Top rows: ``num`` evenly spaced images of ``data`` (test splits may be sorted by label, so the
    first few would all be one digit); bottom rows: their reconstructions."""
    index = torch.linspace(0, len(data) - 1, num).round().long()
    x = data.pixels(data.images[index], generator=torch.Generator().manual_seed(seed))
    # Hierarchical models define reconstruct (their own deterministic pass); a one-layer VAE
    # reconstructs as the decoder mean at the posterior mean.
    recon = model.reconstruct(x) if hasattr(model, "reconstruct") else model.decode(model.encode(x).mean).mean
    c, s = model.config.num_channels, model.config.image_size
    images = torch.cat([x, recon]).reshape(-1, c, s, s)
    save_image_grid(images, path, rows=4, title="test images (top) and reconstructions at the posterior mean")


def training_curves(history, path, keys):
    """Validation metrics over training steps, one panel per metric present in the history."""
    keys = [k for k in keys if any(k in h for h in history)]
    if not keys:
        raise ValueError(f"history has none of the metrics {list(keys)}; cannot draw training curves")
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


def rd_plane(points, highlight, path):
    """Checkpoints on the rate-distortion plane (Alemi et al. 2018, "Fixing a Broken ELBO").

    ``points``: dicts with name, rate, distortion, nll (nats). The line D = H_hat - R, with H_hat
    the best (lowest) NLL among the points, bounds the achievable region: H - D <= I(X;Z) <= R.
    Points on a line of slope -1 share an ELBO; the highlighted point is this card's checkpoint.
    """
    if not any(p["name"] == highlight for p in points):
        raise ValueError(f"{highlight!r} is not among the R-D points {[p['name'] for p in points]}")
    best = min(points, key=lambda p: p["nll"])
    h_hat = best["nll"]
    r_max = max(max(p["rate"] for p in points), h_hat) * 1.1
    fig, ax = plt.subplots(figsize=(5.2, 4.2), dpi=100)
    ax.plot([0, h_hat], [h_hat, 0], color="0.4", lw=1, ls="--",
            label=f"D = H_hat - R (H_hat = {h_hat:.2f}, best NLL: {best['name']})")
    ax.fill_between([0, h_hat], [h_hat, 0], 0, color="0.9", label="infeasible if H = H_hat")
    for p in points:
        mine = p["name"] == highlight
        ax.scatter(p["rate"], p["distortion"], s=60 if mine else 25, zorder=3,
                   color="tab:red" if mine else "tab:blue", label=f"{p['name']} (this model)" if mine else None)
        if not mine:
            ax.annotate(p["name"], (p["rate"], p["distortion"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xlim(0, r_max)
    ax.set_ylim(0, max(max(p["distortion"] for p in points), h_hat) * 1.1)
    ax.set_xlabel("rate R = E KL(q(z|x) || p(z))  [nats]")
    ax.set_ylabel("distortion D = -E log p(x|z)  [nats]")
    ax.set_title(f"rate-distortion plane ({len(points)} zoo checkpoint(s))", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def reliability_diagram(reliability, path, ece=None):
    """Accuracy against confidence per confidence bin (Guo et al. 2017), from saved per-bin data.

    ``reliability``: {"bin_edges": [M+1], "confidence": [M], "accuracy": [M], "count": [M]} with the
    mean confidence, accuracy and number of test examples of each bin (empty bins: count 0).
    """
    edges, conf, acc, count = (reliability[k] for k in ("bin_edges", "confidence", "accuracy", "count"))
    if not len(edges) == len(conf) + 1 == len(acc) + 1 == len(count) + 1:
        raise ValueError("reliability data needs M+1 bin_edges and M confidence/accuracy/count values")
    lefts, widths = edges[:-1], [b - a for a, b in zip(edges[:-1], edges[1:])]
    used = [i for i, n in enumerate(count) if n > 0]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(4.2, 5), dpi=100, sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1]})
    top.bar([lefts[i] for i in used], [acc[i] for i in used], [widths[i] for i in used], align="edge",
            color="tab:blue", edgecolor="k", lw=0.5, label="accuracy")
    top.bar([lefts[i] for i in used], [conf[i] - acc[i] for i in used], [widths[i] for i in used],
            bottom=[acc[i] for i in used], align="edge", color="tab:red", alpha=0.35, label="gap to confidence")
    top.plot([0, 1], [0, 1], color="0.3", ls="--", lw=1, label="perfect calibration")
    top.set_ylabel("accuracy")
    top.set_ylim(0, 1)
    top.set_title("reliability diagram" + (f" (ECE = {ece:.4f})" if ece is not None else ""), fontsize=9)
    top.legend(fontsize=7, loc="upper left")
    bottom.bar(lefts, count, widths, align="edge", color="0.6", edgecolor="k", lw=0.5)
    bottom.set_yscale("log")
    bottom.set_ylabel("examples")
    bottom.set_xlabel("confidence (max predictive probability)")
    bottom.set_xlim(0, 1)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
