"""Named anchor latents and image-change-ordered latent axes for ``meta.json``.

Anchors (:func:`find_anchors`): sample many latents z ~ N(0, 1), render them, describe each
image by colour and texture statistics (:func:`training.metrics.colour_stats`), cluster the
descriptions with k-means, and keep for each cluster its most vivid *typical* latent: of
the half of its members nearest the cluster centre, the one with the most colour, contrast
and detail together (:func:`vividness`). A model's samples vary in quality, and an anchor
is where the film rests, so a murky member would be a murky film; the nearest half keeps
the cluster's look. The pick is a real N(0, 1) draw, so it renders as crisply as any
sample; an average of latents would shrink towards 0 and look washed out. Each anchor
is named from its cluster's measured look: hue family ("ember", "tide", ...), and a
texture or tone word when names would repeat.

Axes (:func:`find_axes`): the directions in latent space along which the image changes
most, averaged over the latent distribution — the top eigenvectors of
``E_z[Jᵀ J]`` where ``J`` is the Jacobian of the (down-sampled) image with respect to z.
They are found without forming ``J`` by block power (subspace) iteration: ``J q`` by
finite differences of batched forward passes, ``Jᵀ v`` by one backward pass, then a
Rayleigh–Ritz step orders them. ``strength[k] = sqrt(λ_k)`` is the RMS pixel change (tanh
units) per unit step along axis k.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from stratum_kernel.picture.generator import Generator
from training.metrics import colour_stats

# Hue families (centre in degrees of the opponent-colour hue angle used by colour_stats).
HUE_NAMES = [
    (0.0, "ember"),
    (35.0, "amber"),
    (65.0, "solar"),
    (110.0, "moss"),
    (165.0, "jade"),
    (200.0, "tide"),
    (235.0, "abyss"),
    (275.0, "dusk"),
    (320.0, "orchid"),
]
NEUTRAL_NAMES = ["ash", "slate", "bone", "ink"]
TONE_WORDS = ["deep", "dusky", "soft", "bright", "pale"]  # by mean brightness
TEXTURE_WORDS = ["veil", "drift", "grain", "shard"]  # by mean |Laplacian| (sharpness)


@torch.no_grad()
def render(
    gen: Generator, z: np.ndarray, *, levels: int | None = None, batch: int = 32
) -> np.ndarray:
    """z float32 [N,8,16,16] → images float32 [N,3,R,R] in [-1,1] (eval mode, no grad)."""
    gen.eval()
    outs = []
    for i in range(0, len(z), batch):
        outs.append(gen(torch.from_numpy(np.ascontiguousarray(z[i : i + batch])), levels).numpy())
    return np.concatenate(outs)


def describe(images: np.ndarray) -> np.ndarray:
    """Images → float32 [N, 7] descriptors: hue on the unit circle × chroma, chroma,
    brightness, contrast, sharpness, hue spread (standardised later by the caller)."""
    st = colour_stats(images)
    rad = np.radians(st["hue"])
    weight = np.clip(st["chroma"] * 4.0, 0.0, 1.0)
    return np.stack(
        [
            np.cos(rad) * weight,
            np.sin(rad) * weight,
            st["chroma"],
            st["brightness"],
            st["contrast"],
            st["sharpness"],
            st["hue_spread"],
        ],
        axis=1,
    ).astype(np.float32)


def vividness(desc: np.ndarray) -> np.ndarray:
    """float [N]: chroma + contrast + sharpness of :func:`describe` rows, each standardised
    over the N samples (a picture worth resting on: colourful, contrasted, detailed)."""
    cols = desc[:, [2, 4, 5]].astype(np.float64)
    return ((cols - cols.mean(0)) / (cols.std(0) + 1e-9)).sum(1)


def kmeans(
    x: np.ndarray, k: int, *, seed: int = 0, iters: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """Plain k-means++ on float [N, D]: returns (centres [k, D], labels [N])."""
    rng = np.random.default_rng(seed)
    centres = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d2 = np.min(((x[:, None, :] - np.array(centres)[None]) ** 2).sum(-1), axis=1)
        centres.append(x[rng.choice(len(x), p=d2 / d2.sum())] if d2.sum() > 0 else x[0])
    c = np.array(centres)
    labels = np.zeros(len(x), dtype=np.int64)
    for _ in range(iters):
        labels = ((x[:, None, :] - c[None]) ** 2).sum(-1).argmin(1)
        new = np.array([x[labels == j].mean(0) if np.any(labels == j) else c[j] for j in range(k)])
        if np.allclose(new, c):
            break
        c = new
    return c, labels


def _hue_name(hue: float) -> str:
    d = [min(abs(hue - h), 360.0 - abs(hue - h)) for h, _ in HUE_NAMES]
    return HUE_NAMES[int(np.argmin(d))][1]


def name_clusters(stats: list[dict[str, float]]) -> list[str]:
    """A distinct evocative name per cluster from its mean statistics (hue, chroma, texture)."""
    names: list[str] = []
    neutral = iter(NEUTRAL_NAMES)
    for s in stats:
        if s["chroma"] < 0.06:
            base = next(neutral, "slate")
        else:
            base = _hue_name(s["hue"])
        tone = TONE_WORDS[min(int(s["brightness"] * len(TONE_WORDS)), len(TONE_WORDS) - 1)]
        texture = TEXTURE_WORDS[min(int(s["sharpness"] * 25), len(TEXTURE_WORDS) - 1)]
        # Same family again: tell them apart by tone, then texture, then a running index.
        candidates = [base, f"{tone}-{base}", f"{tone}-{base}-{texture}"]
        name = next((c for c in candidates if c not in names), None)
        i = 2
        while name is None:
            name = (
                f"{tone}-{base}-{texture}-{i}"
                if f"{tone}-{base}-{texture}-{i}" not in names
                else None
            )
            i += 1
        names.append(name)
    return names


def find_anchors(
    gen: Generator,
    *,
    count: int = 8,
    samples: int = 384,
    seed: int = 0,
    levels: int | None = None,
) -> dict[str, np.ndarray]:
    """Named anchor latents {name: float32 [8,16,16]}, one per k-means cluster of looks."""
    rng = np.random.default_rng(seed)
    shape = (gen.latent_channels, gen.latent_size, gen.latent_size)
    z = rng.standard_normal((samples, *shape)).astype(np.float32)
    images = render(gen, z, levels=levels)
    desc = describe(images)
    std = (desc - desc.mean(0)) / (desc.std(0) + 1e-6)
    centres, labels = kmeans(std, count, seed=seed)
    st = colour_stats(images)
    vivid = vividness(desc)
    picked, cluster_stats = [], []
    for j in range(count):
        members = np.flatnonzero(labels == j)
        if len(members) == 0:
            continue
        dist = ((std[members] - centres[j]) ** 2).sum(1)
        typical = members[np.argsort(dist, kind="stable")[: max(1, (len(members) + 1) // 2)]]
        pick = typical[np.argmax(vivid[typical])]
        picked.append(int(pick))
        cluster_stats.append(
            {
                "hue": float(st["hue"][pick]),
                "chroma": float(st["chroma"][members].mean()),
                "sharpness": float(st["sharpness"][members].mean()),
                "brightness": float(st["brightness"][members].mean()),
            }
        )
    names = name_clusters(cluster_stats)
    return {n: z[i] for n, i in zip(names, picked, strict=True)}


def _image_fn(gen: Generator, size: int, levels: int | None):
    def f(z: torch.Tensor) -> torch.Tensor:
        img = gen(z, levels)
        if img.shape[-1] != size:
            img = F.adaptive_avg_pool2d(img, size)
        return img.flatten(1)

    return f


def find_axes(
    gen: Generator,
    *,
    count: int = 16,
    base_samples: int = 6,
    iterations: int = 3,
    oversample: int = 8,
    size: int = 32,
    levels: int | None = None,
    seed: int = 0,
    eps: float = 1e-2,
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``count`` unit axes float32 [count,8,16,16] of ``E_z[JᵀJ]`` and their strengths [count].

    The image is average-pooled to ``size``² before differencing (the axes describe
    visible change, not pixel noise). Cost: ``iterations × base_samples`` batched
    forward+backward passes of ``count + oversample`` latents.
    """
    gen.eval()
    rng = np.random.default_rng(seed)
    shape = (gen.latent_channels, gen.latent_size, gen.latent_size)
    dim = int(np.prod(shape))
    k = count + oversample
    f = _image_fn(gen, size, levels)
    bases = torch.from_numpy(rng.standard_normal((base_samples, *shape)).astype(np.float32))
    q = torch.linalg.qr(torch.from_numpy(rng.standard_normal((dim, k)).astype(np.float32)))[0]

    def apply_gram(q: torch.Tensor) -> torch.Tensor:
        """E_z[Jᵀ J] q for q [dim, k], averaged over the base latents."""
        acc = torch.zeros_like(q)
        dirs = q.T.reshape(k, *shape)
        for z0 in bases:
            with torch.no_grad():
                y0 = f(z0[None])
                jq = (f(z0[None] + eps * dirs) - y0) / eps  # [k, P] ≈ J q_i
            zz = z0[None].repeat(k, 1, 1, 1).requires_grad_(True)
            (grad,) = torch.autograd.grad((f(zz) * jq).sum(), zz)
            acc += grad.reshape(k, dim).T
        return acc / len(bases)

    for _ in range(iterations):
        q = torch.linalg.qr(apply_gram(q))[0]
    aq = apply_gram(q)
    small = q.T @ aq
    small = 0.5 * (small + small.T)
    evals, evecs = torch.linalg.eigh(small)
    order = torch.argsort(evals, descending=True)[:count]
    axes = (q @ evecs[:, order]).T
    axes = axes / axes.norm(dim=1, keepdim=True)
    # Eigenvectors have no sign; fix one (largest component positive) so exports repeat.
    peak = axes.abs().argmax(dim=1)
    axes = axes * torch.sign(axes[torch.arange(count), peak])[:, None]
    pixels = 3 * size * size
    strength = torch.sqrt(torch.clamp(evals[order], min=0.0) / pixels)
    return axes.reshape(count, *shape).numpy().astype(np.float32), strength.numpy().astype(
        np.float32
    )
