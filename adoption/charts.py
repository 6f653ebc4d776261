"""Charts of the dashboard as inline SVG built on the server: they show
with JavaScript off and in a printed page."""

from dataclasses import dataclass

WIDTH = 480
HEIGHT = 160
PADDING = 28


@dataclass(frozen=True)
class LineChart:
    """A line of percentages by week, with the target as a dashed line."""

    points: str
    dots: list[tuple[float, float, str, str]]
    target_y: float | None
    width: int = WIDTH
    height: int = HEIGHT
    padding: int = PADDING

    @property
    def grid(self) -> list[tuple[float, str]]:
        return [(self._y(value), str(value) + "%") for value in (0, 50, 100)]

    def _y(self, value: float) -> float:
        return round(self.height - self.padding - (self.height - 2 * self.padding) * value / 100.0, 1)


def line_chart(*, labels: list[str], values: list[float | None], target: int | None) -> LineChart:
    """Points for `values` (percentages, None where nobody was counted)."""
    count = max(1, len(values) - 1)
    inner_width = WIDTH - 2 * PADDING
    inner_height = HEIGHT - 2 * PADDING
    coordinates = []
    dots = []
    for index, value in enumerate(values):
        if value is None:
            continue
        x = round(PADDING + inner_width * index / count, 1)
        y = round(HEIGHT - PADDING - inner_height * min(100.0, value) / 100.0, 1)
        coordinates.append(f"{x},{y}")
        dots.append((x, y, labels[index], f"{value:g}%"))
    target_y = None
    if target is not None:
        target_y = round(HEIGHT - PADDING - inner_height * target / 100.0, 1)
    return LineChart(points=" ".join(coordinates), dots=dots, target_y=target_y)
