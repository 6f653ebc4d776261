"""Draw the portal's icons into static/icons/ (run once, the files are committed).

    .venv/bin/python -m portal.make_icons

The design is the one of static/icons/icon.svg, drawn here with Pillow's
shapes (no font, so the result is the same on every machine): a white school
desk — its top and two legs, which also read as the letter «П» of «Парта» —
with a yellow book on it, on the blue of the stylesheet's accent colour. The
"any" icons are a rounded square; the maskable one fills its square and keeps
the desk inside the central safe circle (80 % of the side) that launchers
may crop to. Shapes are drawn four times larger and scaled down, which
smooths their edges."""

from pathlib import Path

from PIL import Image, ImageDraw

ICONS = Path(__file__).resolve().parent.parent / "static" / "icons"
ACCENT = "#0b57a4"  # --accent of static/css/parta.css
BOOK = "#e8a200"  # the focus outline's yellow
WHITE = "#ffffff"
SUPERSAMPLE = 4


def draw(size: int, *, is_maskable: bool) -> Image.Image:
    """The icon at `size` pixels; the geometry is that of the SVG's 512 grid."""
    big = size * SUPERSAMPLE
    scale = big / 512
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    canvas = ImageDraw.Draw(image)
    if is_maskable:
        canvas.rectangle((0, 0, big, big), fill=ACCENT)
        # The desk shrunk around the centre into the safe zone.
        zoom, shift = 0.85, 512 * (1 - 0.85) / 2
    else:
        canvas.rounded_rectangle((0, 0, big - 1, big - 1), radius=96 * scale, fill=ACCENT)
        zoom, shift = 1.0, 0.0

    def box(x: float, y: float, width: float, height: float) -> tuple[float, float, float, float]:
        left, top = (shift + x * zoom) * scale, (shift + y * zoom) * scale
        return (left, top, left + width * zoom * scale, top + height * zoom * scale)

    canvas.rounded_rectangle(box(196, 124, 120, 38), radius=6 * zoom * scale, fill=BOOK)
    canvas.rounded_rectangle(box(112, 162, 288, 56), radius=12 * zoom * scale, fill=WHITE)
    canvas.rectangle(box(152, 212, 48, 176), fill=WHITE)
    canvas.rectangle(box(312, 212, 48, 176), fill=WHITE)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    ICONS.mkdir(parents=True, exist_ok=True)
    draw(192, is_maskable=False).save(ICONS / "icon-192.png", optimize=True)
    draw(512, is_maskable=False).save(ICONS / "icon-512.png", optimize=True)
    draw(512, is_maskable=True).save(ICONS / "icon-maskable-512.png", optimize=True)
    # iOS puts its own rounded mask on a square without transparency.
    draw(180, is_maskable=True).convert("RGB").save(ICONS / "apple-touch-icon.png", optimize=True)
    draw(48, is_maskable=False).save(ICONS / "favicon.ico", sizes=[(16, 16), (32, 32), (48, 48)])


if __name__ == "__main__":
    main()
