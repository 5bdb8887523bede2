from cure.kit.errors import NotFound


class NoQuicklook(NotFound):
    """The asset is not a raster CURE can draw (or lives outside CURE's storage)."""
