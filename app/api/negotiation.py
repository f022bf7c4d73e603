"""Accept-header negotiation shared by handlers and error rendering."""


def _media_ranges(accept: str) -> list[tuple[str, float]]:
    ranges = []
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        ranges.append((media.lower(), quality))
    return ranges


def accepts_json(accept: str | None) -> bool:
    """True when no Accept was sent or it admits ``application/json``."""
    if not accept:
        return True
    return any(
        quality > 0 and media in ("application/json", "application/*", "*/*")
        for media, quality in _media_ranges(accept)
    )


def error_media_type(accept: str | None) -> str:
    """Errors are JSON unless the client only takes HTML or plain text."""
    if accepts_json(accept):
        return "application/json"
    media = {media for media, quality in _media_ranges(accept or "") if quality > 0}
    if "text/html" in media:
        return "text/html"
    if "text/plain" in media:
        return "text/plain"
    return "application/json"
