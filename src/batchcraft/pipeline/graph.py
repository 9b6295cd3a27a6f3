"""Connected components of an edge DataFrame, computed in Spark (never on the driver).

Alternating large-star and small-star rounds (Kiveris et al., "Connected Components in
MapReduce and Beyond", SoCC 2014) turn every component into a star around its smallest
node in O(log² n) rounds, where plain min-label propagation needs as many rounds as the
longest shortest path (a chain of near-duplicate versions of one page is such a path).
Each round's edges are checkpointed, so the lineage Spark keeps stays one round long.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

MAX_ROUNDS = 200
"""Rounds after which the computation is a bug (O(log² n) rounds are needed)."""


@dataclass(frozen=True)
class Components:
    """The components of a graph.

    Attributes:
        labels: ``id``, ``component`` (the smallest id of the component) of every node
            that has an edge.
        rounds: Large-star + small-star rounds it took (0 when every component was a
            star already, e.g. a pair).
    """

    labels: DataFrame
    rounds: int


def connected_components(
    edges: DataFrame,
    checkpoint: Callable[[DataFrame], DataFrame] = lambda df: df.localCheckpoint(),
) -> Components:
    """Components of the undirected graph whose edges are the ``u``, ``v`` rows of ``edges``.

    Args:
        edges: Node ids in columns ``u`` and ``v`` (strings or numbers; self-loops and
            repeated edges are fine).
        checkpoint: Cuts each round's lineage (eagerly).
    """
    current = checkpoint(
        edges.select(F.greatest("u", "v").alias("node"), F.least("u", "v").alias("label"))
        .where(F.col("node") != F.col("label"))
        .distinct()
    )
    rounds = 0
    while not _is_star_forest(current):  # pairs, the most common group, need no round
        if rounds == MAX_ROUNDS:
            raise RuntimeError(f"connected components did not converge in {MAX_ROUNDS} rounds")
        current = checkpoint(_small_star(_large_star(current)))
        rounds += 1
    return Components(_labels(current), rounds)


def _large_star(edges: DataFrame) -> DataFrame:
    """Every node's larger neighbours are linked to the smallest node of its neighbourhood."""
    both = edges.select(F.col("node").alias("x"), F.col("label").alias("y")).unionByName(
        edges.select(F.col("label").alias("x"), F.col("node").alias("y"))
    )
    smallest = both.groupBy("x").agg(F.min("y").alias("m"))
    return (
        both.join(smallest, "x")
        .where(F.col("y") > F.col("x"))
        .select(F.col("y").alias("node"), F.least("m", "x").alias("label"))
        .distinct()
    )


def _small_star(edges: DataFrame) -> DataFrame:
    """Every node and its smaller neighbours are linked to the smallest of them."""
    smallest = edges.groupBy("node").agg(F.min("label").alias("m"))
    neighbours = (
        edges.join(smallest, "node")
        .where(F.col("label") != F.col("m"))
        .select(F.col("label").alias("node"), F.col("m").alias("label"))
    )
    return neighbours.unionByName(smallest.select("node", F.col("m").alias("label"))).distinct()


def _is_star_forest(edges: DataFrame) -> bool:
    """Whether every node links to one label that links to nothing: then each component
    is a star around its smallest node (edges always link a node to a smaller one)."""
    labels = edges.select(F.col("label").alias("node")).distinct()
    label_with_a_label = edges.join(labels, "node", "left_semi").select("node")
    node_with_two_labels = edges.groupBy("node").count().where(F.col("count") > 1).select("node")
    return label_with_a_label.unionByName(node_with_two_labels).isEmpty()


def _labels(stars: DataFrame) -> DataFrame:
    """Converged, every edge links a node to its component's smallest node (the centre)."""
    leaves = stars.select(F.col("node").alias("id"), F.col("label").alias("component"))
    centres = stars.select(F.col("label").alias("id"), F.col("label").alias("component"))
    return leaves.unionByName(centres).distinct()
