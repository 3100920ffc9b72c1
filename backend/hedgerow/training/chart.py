"""The loss curves as server-rendered SVG geometry (the template draws them): one per
stage, since SFT's cross-entropy and DPO's preference loss are on different scales."""

from __future__ import annotations

from dataclasses import dataclass

from hedgerow.i18n import lazy_gettext

WIDTH = 600
HEIGHT = 200
PADDING = 36
# A loss history point is [step, loss] for SFT and [step, loss, DPO_POINT_MARK] for DPO.
DPO_POINT_MARK = 1
STAGE_TITLES = {
    "sft": lazy_gettext("Training loss by step (SFT)"),
    "dpo": lazy_gettext("DPO loss by step"),
}


@dataclass
class LossChart:
    points: str
    min_loss: float
    max_loss: float
    first_step: int
    last_step: int
    title: str = ""
    width: int = WIDTH
    height: int = HEIGHT
    padding: int = PADDING


def stage_of(point: list[float]) -> str:
    return "dpo" if len(point) > 2 and point[2] == DPO_POINT_MARK else "sft"


def loss_chart(history: list[list[float]]) -> LossChart | None:
    """Polyline points for [[step, loss], ...], scaled to the chart; None below 2 points."""
    if len(history) < 2:
        return None
    steps = [point[0] for point in history]
    losses = [point[1] for point in history]
    low, high = min(losses), max(losses)
    span_loss = (high - low) or 1.0
    first, last = steps[0], steps[-1]
    span_steps = (last - first) or 1
    inner_width = WIDTH - 2 * PADDING
    inner_height = HEIGHT - 2 * PADDING
    points = " ".join(
        f"{PADDING + (step - first) / span_steps * inner_width:.1f},"
        f"{PADDING + (high - loss) / span_loss * inner_height:.1f}"
        for step, loss in zip(steps, losses, strict=True)
    )
    return LossChart(
        points=points,
        min_loss=low,
        max_loss=high,
        first_step=int(first),
        last_step=int(last),
    )


def loss_charts(history: list[list[float]]) -> list[LossChart]:
    """One chart per stage that logged at least two points, SFT first."""
    charts = []
    for stage, title in STAGE_TITLES.items():
        chart = loss_chart([point for point in history if stage_of(point) == stage])
        if chart is not None:
            chart.title = str(title)
            charts.append(chart)
    return charts
