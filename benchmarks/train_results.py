"""The rows of `train_through_service.py`'s table: each variant's runs against uniform's
(steps and wall-clock to a shared target, final metric, batches/s, the selector's share
of the server's CPU), the goal each variant must meet, and the markdown table."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

import numpy as np
from train_loop import Curve

TARGET_SHARE = 0.95
MET = {True: "yes", False: "NO", None: "—"}


@dataclass(frozen=True)
class Goal:
    """What a variant must show against uniform: step and wall-clock ratios, or a higher
    metric at equal steps."""

    text: str
    steps_ratio: float | None = None
    wall_ratio: float | None = None
    equal_steps: bool = False


GOALS = {
    ("label_noise", "jest"): Goal("steps ≤ 0.6×, wall-clock ≤ 0.7×", 0.6, 0.7),
    ("label_noise", "jest_independent"): Goal("fewer steps than uniform", 1.0),
    ("label_noise", "jest (sync)"): Goal("none (reference: fresh losses, no estimates)"),
    ("label_noise", "jest (ahead, T=0.3)"): Goal("steps ≤ 0.6×, wall-clock ≤ 0.7×", 0.6, 0.7),
    ("label_noise_2k", "jest"): Goal("steps ≤ 0.6×, wall-clock ≤ 0.7×", 0.6, 0.7),
    ("label_noise_2k", "jest (T=0.3)"): Goal("steps ≤ 0.6×, wall-clock ≤ 0.7×", 0.6, 0.7),
    ("label_noise_2k", "jest_independent"): Goal("fewer steps than uniform", 1.0),
    ("noisy_pairs", "jest (sync)"): Goal("steps ≤ 0.5×, wall-clock ≤ 0.6×", 0.5, 0.6),
    ("noisy_pairs", "jest (async)"): Goal("steps ≤ 0.5×, wall-clock ≤ 0.6×", 0.5, 0.6),
    ("coreset", "coreset"): Goal("fewer steps than uniform", 1.0),
    ("concept", "concept"): Goal("higher long-tail accuracy at equal steps", equal_steps=True),
    ("hard_negative", "hard_negative"): Goal("higher recall@10 at equal steps", equal_steps=True),
}


# ----------------------------------------------------------------------------- measuring


@dataclass
class Run:
    """One training run of one variant on one seed, with the server's costs during it."""

    task: str
    variant: str
    seed: int
    curve: Curve
    server: dict[str, float]  # differences of `ServerProcess.snapshot` over the run

    @property
    def batches_per_second(self) -> float:
        return self.curve.batches / self.curve.train_seconds

    @property
    def selection_share(self) -> float:
        cpu = self.server["cpu_seconds"]
        return self.server["selection_seconds"] / cpu if cpu > 0 else float("nan")


@dataclass
class Row:
    """One variant of one task against uniform, medians over seeds."""

    task: str
    selector: str
    metric: str
    target: float
    steps: float
    uniform_steps: float
    seconds: float
    uniform_seconds: float
    final: float
    uniform_final: float
    batches_per_second: float
    uniform_batches_per_second: float
    selection_share: float
    goal: str
    met: bool | None
    diagnostics: dict[str, float]
    uniform_diagnostics: dict[str, float]
    steps_to_uniform_final: tuple[float, float] = (float("nan"), float("nan"))

    @property
    def steps_ratio(self) -> float:
        return self.steps / self.uniform_steps

    @property
    def wall_ratio(self) -> float:
        return self.seconds / self.uniform_seconds


def to_target(curve: Curve, target: float) -> tuple[float, float]:
    """Steps and training seconds until the first evaluation at or above ``target``."""
    index = curve.first_reaching(target)
    if index is None:
        return float("inf"), float("inf")
    return float(curve.steps[index]), curve.seconds[index]


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def compare(task: Any, variant: str, runs: list[Run]) -> Row:
    """The row of ``variant`` against uniform on ``task`` (runs of every variant and seed)."""
    mine = [run for run in runs if run.variant == variant]
    uniform = [run for run in runs if run.variant == "uniform"]
    target = TARGET_SHARE * median([run.curve.final() for run in uniform])
    reached = [to_target(run.curve, target) for run in mine]
    uniform_reached = [to_target(run.curve, target) for run in uniform]
    goal = GOALS.get((task.name, variant), Goal("none set"))
    row = Row(
        task.name, variant, task.metric, target,
        median([steps for steps, _ in reached]), median([steps for steps, _ in uniform_reached]),
        median([seconds for _, seconds in reached]),
        median([seconds for _, seconds in uniform_reached]),
        median([run.curve.final() for run in mine]), median([run.curve.final() for run in uniform]),
        median([run.batches_per_second for run in mine]),
        median([run.batches_per_second for run in uniform]),
        median([run.selection_share for run in mine]), goal.text, False,
        diagnostics(mine), diagnostics(uniform),
    )  # fmt: skip
    row.met = goal_met(goal, row)
    uniform_final = median([run.curve.final() for run in uniform])
    row.steps_to_uniform_final = (
        median([to_target(run.curve, uniform_final)[0] for run in mine]),
        median([to_target(run.curve, uniform_final)[0] for run in uniform]),
    )
    return row


def diagnostics(runs: list[Run]) -> dict[str, float]:
    """Each diagnostic's run mean, median over the runs."""
    names = sorted({name for run in runs for name in run.curve.diagnostics})
    return {
        name: median([float(np.mean(run.curve.diagnostics[name])) for run in runs])
        for name in names
    }


def goal_met(goal: Goal, row: Row) -> bool | None:
    if goal.steps_ratio is None and goal.wall_ratio is None and not goal.equal_steps:
        return None
    if goal.equal_steps:
        return row.final > row.uniform_final
    steps_ok = goal.steps_ratio is None or (
        row.steps_ratio <= goal.steps_ratio and row.steps < row.uniform_steps
    )
    wall_ok = goal.wall_ratio is None or row.wall_ratio <= goal.wall_ratio
    return bool(steps_ok and wall_ok)


# ----------------------------------------------------------------------------- report


def fmt(value: float, digits: int = 0) -> str:
    return "never" if value == float("inf") else f"{value:,.{digits}f}"


def markdown(rows: list[Row], throughput: dict[str, Any] | None, seeds: int) -> str:
    lines = [
        "| selector | task (metric, target) | steps to target vs uniform | wall-clock to "
        "target vs uniform, s | ratio steps / wall | final metric vs uniform | batches/s "
        "vs uniform | selection share of server CPU | goal | met |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.selector} | {row.task} ({row.metric} ≥ {row.target:.3f}) | "
            f"{fmt(row.steps)} vs {fmt(row.uniform_steps)} | {fmt(row.seconds, 1)} vs "
            f"{fmt(row.uniform_seconds, 1)} | {row.steps_ratio:.2f}× / {row.wall_ratio:.2f}× | "
            f"{row.final:.3f} vs {row.uniform_final:.3f} | {row.batches_per_second:,.0f} vs "
            f"{row.uniform_batches_per_second:,.0f} | {row.selection_share:.0%} | {row.goal} | "
            f"{MET[row.met]} |"
        )
    if throughput is not None:
        lines.append(
            f"| jest (per-example losses reported for every batch) | throughput, 512 KiB "
            f"batches, no training | | | | | {throughput['jest_batches_per_second']:,.0f} vs "
            f"{throughput['uniform_batches_per_second']:,.0f} | "
            f"{throughput['selection_share']:.0%} | {throughput['goal']} | "
            f"{'yes' if throughput['met'] else 'NO'} |"
        )
    lines.append(f"\nMedians of {seeds} seed(s); wall-clock excludes the held-out evaluations.")
    for row in rows:
        mine, theirs = row.steps_to_uniform_final
        lines.append(
            f"- {row.selector} on {row.task}: steps to uniform's final {row.metric} "
            f"({row.uniform_final:.3f}): {fmt(mine)} vs {fmt(theirs)}"
        )
        for name, value in row.diagnostics.items():
            lines.append(
                f"- {row.selector} on {row.task}: {name} of the trained batches {value:.3f} "
                f"(uniform {row.uniform_diagnostics.get(name, float('nan')):.3f})"
            )
    return "\n".join(lines)
