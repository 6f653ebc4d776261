"""Charts of the dashboard as inline SVG built on the server: they show
with JavaScript off and in a printed page. Coordinates are strings made
here, so that the Russian locale's decimal comma never reaches the SVG."""

from dataclasses import dataclass

WIDTH = 480
HEIGHT = 160
PADDING = 28


def _number(value: float) -> str:
    return f"{value:.1f}"


def _y(value: float) -> float:
    return HEIGHT - PADDING - (HEIGHT - 2 * PADDING) * min(100.0, max(0.0, value)) / 100.0


@dataclass(frozen=True)
class LineChart:
    """A line of percentages by week, with the target as a dashed line."""

    points: str
    dots: list[tuple[str, str, str, str]]
    target_y: str | None
    width: int = WIDTH
    height: int = HEIGHT
    padding: int = PADDING

    @property
    def grid(self) -> list[tuple[str, str]]:
        return [(_number(_y(value)), str(value) + "%") for value in (0, 50, 100)]


def line_chart(*, labels: list[str], values: list[float | None], target: int | None) -> LineChart:
    """Points for `values` (percentages, None where nobody was counted)."""
    count = max(1, len(values) - 1)
    inner_width = WIDTH - 2 * PADDING
    coordinates = []
    dots = []
    for index, value in enumerate(values):
        if value is None:
            continue
        x = _number(PADDING + inner_width * index / count)
        y = _number(_y(value))
        coordinates.append(x + "," + y)
        dots.append((x, y, labels[index], f"{value:g}%"))
    target_y = _number(_y(target)) if target is not None else None
    return LineChart(points=" ".join(coordinates), dots=dots, target_y=target_y)
