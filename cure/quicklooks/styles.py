"""How each kind of raster is drawn as a quicklook: colormaps and styles by app or product type.

Plain data, no raster library: code that only names a style (an order's asset, a product's)
imports this, not the drawing (``cure.quicklooks.render``, which loads rasterio).
"""

from dataclasses import dataclass

# Colormaps as stops (position 0-1, RGB); colours from ColorBrewer and matplotlib's viridis.
COLORMAPS: dict[str, list[tuple[float, tuple[int, int, int]]]] = {
    "heat-diverging": [  # ColorBrewer RdBu, reversed: blue cooler, red warmer than the reference
        (0.0, (5, 48, 97)),
        (0.2, (67, 147, 195)),
        (0.4, (209, 229, 240)),
        (0.5, (247, 247, 247)),
        (0.6, (253, 219, 199)),
        (0.8, (214, 96, 77)),
        (1.0, (103, 0, 31)),
    ],
    "vegetation": [  # ColorBrewer BrBG's brown end into YlGn: bare to dense vegetation
        (0.0, (140, 81, 10)),
        (0.25, (223, 194, 125)),
        (0.45, (246, 232, 195)),
        (0.6, (173, 221, 142)),
        (0.8, (49, 163, 84)),
        (1.0, (0, 69, 41)),
    ],
    "temperature": [  # matplotlib's inferno, sampled
        (0.0, (0, 0, 4)),
        (0.25, (87, 16, 110)),
        (0.5, (188, 55, 84)),
        (0.75, (249, 142, 9)),
        (1.0, (252, 255, 164)),
    ],
    "water": [  # ColorBrewer Blues: dry to wet
        (0.0, (247, 251, 255)),
        (0.25, (198, 219, 239)),
        (0.5, (107, 174, 214)),
        (0.75, (33, 113, 181)),
        (1.0, (8, 48, 107)),
    ],
    "air": [  # ColorBrewer YlOrRd: clean to polluted air
        (0.0, (255, 255, 204)),
        (0.25, (254, 217, 118)),
        (0.5, (253, 141, 60)),
        (0.75, (227, 26, 28)),
        (1.0, (128, 0, 38)),
    ],
    "viridis": [
        (0.0, (68, 1, 84)),
        (0.25, (59, 82, 139)),
        (0.5, (33, 145, 140)),
        (0.75, (94, 201, 98)),
        (1.0, (253, 231, 37)),
    ],
}


@dataclass(frozen=True)
class Style:
    """How a kind of raster is drawn: its colormap over a fixed range, a range symmetric about
    zero, or the 2nd to 98th percentile of its values."""

    colormap: str
    label: str
    unit: str | None = None
    fixed: tuple[float, float] | None = None
    symmetric: bool = False


STYLE_VERSION = 1  # part of the cache key: a change of drawing renders every quicklook anew
STYLES = {
    "suhi": Style("heat-diverging", "SUHI intensity", "K", symmetric=True),
    "urban_green": Style("vegetation", "NDVI", None, fixed=(-0.2, 0.9)),
    "SL_2_LST": Style("temperature", "Land surface temperature", "K"),
    "flood_susceptibility": Style("water", "Flood susceptibility", None, fixed=(0.0, 1.0)),
    "heat_exposure": Style("temperature", "Heat exposure", "person K"),
    "air_quality": Style("air", "Mean daily concentration", "µg/m³"),  # band 1 of its four
}
DEFAULT_STYLE = Style("viridis", "Value")


def style_for(*names: str | None) -> Style:
    """The style of the first name (an app id, a product type) that has one."""
    for name in names:
        if name and name in STYLES:
            return STYLES[name]
    return DEFAULT_STYLE
