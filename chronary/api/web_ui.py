"""The bundled web UI (`web/`): the app shell at `/`, its assets, vendored libraries, offline API docs.

No build step: the UI is plain ES modules. At startup every file under `web/assets` and
`web/vendor` is read once and fingerprinted (SHA-256, 10 hex characters); each is gzipped in memory
when first sent compressed (not at startup, where compressing all of them cost ~50 ms). The
shell gets `?v=<fingerprint>` on its own references and an import map that gives every module its
fingerprinted URL, so a fingerprinted request can be cached for a year (`immutable`) and a new
release is fetched at once. Unfingerprinted requests revalidate with the ETag. Nothing is loaded
from anywhere else: the UI works on an offline LAN.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import mimetypes
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.params import Parameter

from chronary.errors import NotFound

_COMPRESSIBLE = (".js", ".mjs", ".css", ".html", ".svg", ".json", ".txt", ".map")
_REF = re.compile(r'(href|src)="(/(?:assets|vendor)/[^"?#]+)"')
YEAR = 31536000


def web_dir() -> Path | None:
    """The bundled UI: beside the package in a checkout, under _MEIPASS in the binary."""
    if getattr(sys, "frozen", False):
        candidate = Path(sys._MEIPASS) / "web"  # type: ignore[attr-defined]
    else:
        candidate = Path(__file__).resolve().parent.parent.parent / "web"
        packaged = Path(__file__).resolve().parent.parent / "web"  # a wheel: chronary/web
        if not (candidate / "index.html").exists() and (packaged / "index.html").exists():
            candidate = packaged
    return candidate if (candidate / "index.html").exists() else None


@dataclass(frozen=True)
class Asset:
    body: bytes
    compressible: bool
    media_type: str
    fingerprint: str

    @functools.cached_property
    def gz(self) -> bytes | None:
        return gzip.compress(self.body, 9, mtime=0) if self.compressible else None


class Bundle:
    """Every UI file, read and fingerprinted once (each compressed once, when first sent so)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.assets: dict[str, Asset] = {}
        for folder in ("assets", "vendor"):
            for path in sorted((root / folder).rglob("*")):
                if path.is_file() and not path.name.startswith("."):
                    self.assets["/" + path.relative_to(root).as_posix()] = _load(path)
        self.pages = {name: self._page(root / name) for name in ("index.html", "login.html") if (root / name).exists()}

    def url(self, path: str) -> str:
        asset = self.assets.get(path)
        return f"{path}?v={asset.fingerprint}" if asset else path

    def _page(self, path: Path) -> bytes:
        html = _REF.sub(lambda m: f'{m.group(1)}="{self.url(m.group(2))}"', path.read_text(encoding="utf-8"))
        modules = {p: self.url(p) for p in self.assets if p.endswith((".js", ".mjs"))}
        importmap = f'<script type="importmap">{json.dumps({"imports": modules}, separators=(",", ":"))}</script>'
        return html.replace("<!-- importmap -->", importmap).encode()


def _load(path: Path) -> Asset:
    body = path.read_bytes()
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if path.suffix == ".mjs":
        media = "text/javascript"
    if media.startswith("text/") or media in ("application/javascript", "application/json"):
        media += "; charset=utf-8"
    compressible = path.suffix in _COMPRESSIBLE and len(body) > 512
    return Asset(body, compressible, media, hashlib.sha256(body).hexdigest()[:10])


_bundle: Bundle | None = None


def bundle() -> Bundle | None:
    global _bundle
    root = web_dir()
    if root is None:
        return None
    if _bundle is None or _bundle.root != root:
        _bundle = Bundle(root)
    return _bundle


def _send(request: Request[Any, Any, Any], asset: Asset, cache: str) -> Response[bytes]:
    etag = f'"{asset.fingerprint}"'
    headers = {"Cache-Control": cache, "ETag": etag, "Vary": "Accept-Encoding", "X-Content-Type-Options": "nosniff"}
    if request.headers.get("if-none-match") == etag:
        return Response(b"", status_code=304, headers=headers)
    if asset.gz is not None and "gzip" in request.headers.get("accept-encoding", ""):
        return Response(asset.gz, media_type=asset.media_type, headers={**headers, "Content-Encoding": "gzip"})
    return Response(asset.body, media_type=asset.media_type, headers=headers)


def page(request: Request[Any, Any, Any], name: str) -> Response[bytes]:
    found = bundle()
    if found is None or name not in found.pages:
        raise NotFound("This build has no web UI; use the API with an API key (docs at /schema)")
    body = found.pages[name]
    asset = Asset(body, True, "text/html; charset=utf-8", hashlib.sha256(body).hexdigest()[:10])
    return _send(request, asset, "no-cache")


@get("/", include_in_schema=False, sync_to_thread=False)
def index(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The app shell (its views are hash routes: /#/calendar, /#/agents, …)."""
    return page(request, "index.html")


@get(["/assets/{path:path}", "/vendor/{path:path}"], include_in_schema=False, sync_to_thread=False)
def static(
    request: Request[Any, Any, Any], path: str, v: str | None = Parameter(default=None, max_length=64)
) -> Response[bytes]:
    found = bundle()
    prefix = "/assets" if request.url.path.startswith("/assets/") else "/vendor"
    asset = found.assets.get(prefix + path) if found else None
    if asset is None:
        raise NotFound(f"No UI file {request.url.path}")
    cache = f"public, max-age={YEAR}, immutable" if v == asset.fingerprint else "no-cache"
    return _send(request, asset, cache)


def redoc_js() -> str:
    """Where /schema's docs page loads Redoc from: this server (fingerprinted)."""
    found = bundle()
    return found.url("/vendor/redoc/redoc.standalone.js") if found else "/vendor/redoc/redoc.standalone.js"


PUBLIC_ROUTES = [index, static]
