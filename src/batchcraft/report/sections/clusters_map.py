"""The cluster section's centroid map: centroids projected on their first two principal
components (JSON), drawn as a scatter plot whose point areas follow cluster sizes (HTML)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from batchcraft.report.charts.continuous import scatter
from batchcraft.report.html import Html, figure


def centroid_map(centroids: np.ndarray) -> dict[str, Any]:
    """Project centroids onto their first two principal components.

    Returns:
        ``x`` and ``y`` coordinates per cluster and the share of variance each axis explains.
    """
    if centroids.shape[0] < 2:
        zeros = [0.0] * centroids.shape[0]
        return {"x": zeros, "y": zeros, "explained_variance": [0.0, 0.0]}
    centered = centroids - centroids.mean(axis=0)
    _, singular, components = np.linalg.svd(centered, full_matrices=False)
    coords = centered @ components[:2].T
    if coords.shape[1] < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    variance = singular**2
    explained = (variance[:2] / variance.sum()).tolist() if variance.sum() > 0 else [0.0, 0.0]
    return {
        "x": np.round(coords[:, 0], 5).tolist(),
        "y": np.round(coords[:, 1], 5).tolist(),
        "explained_variance": [round(value, 4) for value in explained],
    }


def centroid_map_figure(clusters: dict[str, Any]) -> Html:
    """The map of the cluster section's JSON (whose ``map`` is set), with its caption."""
    sizes, points = clusters["sizes"], clusters["map"]
    largest = max(sizes) or 1
    radius = [2.5 + 15.0 * math.sqrt(size / largest) for size in sizes]
    tips = [
        f"cluster {c}: {sizes[c]:,} rows, {clusters['kept'][c]:,} kept, mean centroid sim "
        f"{clusters['mean_centroid_sim'][c]}"
        for c in range(len(sizes))
    ]
    labels = {item["cluster"]: str(item["cluster"]) for item in clusters["largest"]}
    chart = scatter(
        points["x"],
        points["y"],
        radius=radius,
        tips=tips,
        labels=labels,
        title="Centroid map (PCA)",
        x_label="PC 1",
        y_label="PC 2",
        height=340,
    )
    explained = points["explained_variance"]
    caption = (
        f"Centroids projected on their first two principal components ({100 * explained[0]:.0f} % "
        f"and {100 * explained[1]:.0f} % of variance); area ∝ cluster size; largest labelled."
    )
    return figure(chart, caption)
