"""Swagger UI and ReDoc pages, over assets the package ships (no CDN).

The assets are in ``static/``: swagger-ui-dist and ReDoc's standalone bundle,
vendored from their npm packages (``make docs-assets`` refreshes them at the
pinned versions), and the two small scripts that set the viewers up. The
pages carry their configuration as JSON, so they run no inline script.
"""

import html
import json
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response

from app.microversion import VERSIONS

STATIC = Path(__file__).parent / "static"
ASSETS = frozenset(
    path.name for path in STATIC.iterdir() if path.suffix in {".js", ".css", ".png"}
)
MEDIA = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
# Nothing but this server: ReDoc's sidebar links a logo on its vendor's CDN,
# which the browser must not fetch. Styles are injected by both viewers;
# ReDoc's search runs in a worker made from a blob.
POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; worker-src 'self' blob:; connect-src 'self'; "
    "frame-ancestors 'self'"
)


def prefix(request: Request) -> str:
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


def document_url(base: str, label: str) -> str:
    if label == VERSIONS[-1]:
        return f"{base}/openapi.json"
    return f"{base}/openapi/{label}.json"


def _config(data: object) -> str:
    text = json.dumps(data).replace("<", "\\u003c")
    return f'<script id="placement-docs-config" type="application/json">{text}</script>'


def _page(title: str, head: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"{head}\n</head>\n<body>\n{body}\n</body>\n</html>\n",
        headers={"content-security-policy": POLICY},
    )


def swagger_ui(request: Request, title: str) -> HTMLResponse:
    base = prefix(request)
    static = f"{base}/openapi/static"
    urls = [
        {"url": document_url(base, label), "name": label, "version": label}
        for label in reversed(VERSIONS)
    ]
    config = {"urls": urls, "primary": VERSIONS[-1], "documents": f"{base}/openapi"}
    return _page(
        f"{title} - Swagger UI",
        f'<link rel="stylesheet" href="{static}/swagger-ui.css">\n'
        f'<link rel="icon" type="image/png" href="{static}/favicon-32x32.png">',
        f'<div id="swagger-ui"></div>\n{_config(config)}\n'
        f'<script src="{static}/swagger-ui-bundle.js"></script>\n'
        f'<script src="{static}/swagger-ui-standalone-preset.js"></script>\n'
        f'<script src="{static}/placement-docs.js"></script>',
    )


def redoc(request: Request, title: str) -> HTMLResponse:
    base = prefix(request)
    static = f"{base}/openapi/static"
    label = request.query_params.get("version", VERSIONS[-1])
    if label not in VERSIONS:
        label = VERSIONS[-1]
    options = "".join(
        f'<option value="{each}"{" selected" if each == label else ""}>{each}</option>'
        for each in reversed(VERSIONS)
    )
    return _page(
        f"{title} - ReDoc",
        f'<link rel="icon" type="image/png" href="{static}/favicon-32x32.png">\n'
        "<style>body{margin:0} .picker{padding:8px 16px;font-family:sans-serif;"
        "border-bottom:1px solid #ddd}</style>",
        f'<div class="picker"><label for="version">Microversion </label>'
        f'<select id="version">{options}</select></div>\n<div id="redoc"></div>\n'
        f"{_config({'url': document_url(base, label)})}\n"
        f'<script src="{static}/redoc.standalone.js"></script>\n'
        f'<script src="{static}/placement-redoc.js"></script>',
    )


def asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in ASSETS:
        return PlainTextResponse("Not Found", status_code=404)
    path = STATIC / name
    return FileResponse(
        path,
        media_type=MEDIA[path.suffix],
        headers={"cache-control": "public, max-age=86400"},
    )
