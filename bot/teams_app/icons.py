"""The Teams app's two icons, drawn here rather than shipped as binaries: a white speech
bubble with three dots. Teams asks for a 192x192 full-colour icon and a 32x32 outline
icon that is white on a transparent background.

The PNG writer is the format's minimum (one IHDR, one IDAT, IEND; 8-bit RGBA, no filter),
so the package needs no imaging library.
"""

from __future__ import annotations

import functools
import struct
import zlib
from collections.abc import Callable

RGBA = tuple[int, int, int, int]
# (x, y) in the unit square -> is the point inside the shape?
Shape = Callable[[float, float], bool]

# Each pixel is sampled SAMPLES x SAMPLES times, so the edges are smooth.
SAMPLES = 4
WHITE = (255, 255, 255)


def hex_colour(value: str) -> tuple[int, int, int]:
    """'#0F5C4D' -> (15, 92, 77)."""
    digits = value.removeprefix("#")
    if len(digits) != 6:
        raise ValueError(f"not a #RRGGBB colour: {value!r}")
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def png(width: int, height: int, pixels: list[RGBA]) -> bytes:
    """Encodes row-major RGBA pixels as a PNG file."""
    if len(pixels) != width * height:
        raise ValueError(f"{len(pixels)} pixels for a {width}x{height} image")

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type: none
        for red, green, blue, alpha in pixels[y * width : (y + 1) * width]:
            rows += bytes((red, green, blue, alpha))
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def _coverage(size: int, shape: Shape) -> list[float]:
    """The share of each pixel inside `shape`, 0.0 to 1.0. A pixel whose four corners agree
    is taken as wholly in or out; only the others (the edges) are sampled finely."""
    step = 1.0 / size
    corners = [[shape(px * step, py * step) for px in range(size + 1)] for py in range(size + 1)]
    fine = step / SAMPLES
    result = []
    for py in range(size):
        for px in range(size):
            seen = {corners[py][px], corners[py][px + 1], corners[py + 1][px], corners[py + 1][px + 1]}
            if len(seen) == 1:
                result.append(1.0 if seen.pop() else 0.0)
                continue
            hits = sum(
                shape((px * SAMPLES + sx + 0.5) * fine, (py * SAMPLES + sy + 0.5) * fine)
                for sy in range(SAMPLES)
                for sx in range(SAMPLES)
            )
            result.append(hits / (SAMPLES * SAMPLES))
    return result


def _ellipse(cx: float, cy: float, rx: float, ry: float) -> Shape:
    return lambda x, y: ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0


def _triangle(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> Shape:
    def side(p: tuple[float, float], q: tuple[float, float], x: float, y: float) -> float:
        return (x - q[0]) * (p[1] - q[1]) - (p[0] - q[0]) * (y - q[1])

    def inside(x: float, y: float) -> bool:
        d1, d2, d3 = side(a, b, x, y), side(b, c, x, y), side(c, a, x, y)
        return not ((d1 < 0 or d2 < 0 or d3 < 0) and (d1 > 0 or d2 > 0 or d3 > 0))

    return inside


def _union(*shapes: Shape) -> Shape:
    return lambda x, y: any(shape(x, y) for shape in shapes)


def _minus(shape: Shape, hole: Shape) -> Shape:
    return lambda x, y: shape(x, y) and not hole(x, y)


_TAIL = _triangle((0.30, 0.58), (0.46, 0.66), (0.22, 0.82))
_DOTS = _union(*(_ellipse(cx, 0.45, 0.05, 0.05) for cx in (0.36, 0.50, 0.64)))


@functools.cache  # a second or so of pure Python per call; the same icon every time
def colour_icon(accent: str, size: int = 192) -> bytes:
    """The full-colour icon: a white bubble with dots in `accent`, on `accent`."""
    background = hex_colour(accent)
    bubble = _coverage(size, _union(_ellipse(0.5, 0.45, 0.32, 0.25), _TAIL))
    dots = _coverage(size, _DOTS)
    pixels: list[RGBA] = []
    for white, dot in zip(bubble, dots, strict=True):
        share = white * (1.0 - dot)  # dots are cut out of the bubble, back to the background
        red, green, blue = (round(b + (w - b) * share) for b, w in zip(background, WHITE, strict=True))
        pixels.append((red, green, blue, 255))
    return png(size, size, pixels)


@functools.cache
def outline_icon(size: int = 32) -> bytes:
    """The outline icon: the bubble's outline and dots in white, the rest transparent."""
    stroke = 2.5 / size
    tail = _triangle((0.26, 0.64), (0.46, 0.72), (0.12, 0.92))
    outer = _union(_ellipse(0.5, 0.45, 0.40, 0.32), tail)
    inner = _ellipse(0.5, 0.45, 0.40 - stroke, 0.32 - stroke)
    shape = _union(_minus(outer, inner), _DOTS)
    return png(size, size, [(*WHITE, round(255 * share)) for share in _coverage(size, shape)])
