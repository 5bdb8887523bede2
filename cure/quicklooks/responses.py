from fastapi import Response


def png_response(data: bytes) -> Response:
    """A quicklook image, which the browser may keep for an hour (it is the caller's own)."""
    return Response(
        data, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"}
    )
