"""The demo's web server: a Starlette app (page + API) served by uvicorn.

API (all same-origin; no CORS headers are ever sent):
    GET  /                      the page (static/index.html; app.js, style.css under /static/)
    GET  /api/info              input size, mode (image | label), palette, models and their
                                figures (MACs, params, quality from the run report), Pareto front
    POST /api/run/{model}       body: an encoded image (image/png, image/jpeg, ...), raw RGBA
                                (application/x-rgba, ?w=&h=) or label indices (application/
                                x-labels, ?w=&h=, one byte per pixel); ?format=rgba|png (png).
                                The output image; X-Inference-Ms (the model alone), X-Server-Ms
                                (decode + inference + encode), X-Backend
    POST /api/upload            an image file -> PNG at the demo size (label mode: an index
                                image -> application/x-labels bytes)
    GET  /api/example           a random input of the run's held-out training slice (PNG;
                                label-map models: application/x-labels, one id byte a pixel)
    POST /api/benchmark?runs=N  each model alone: warm-up, then median of N (JSON)
    POST /api/subnet            {"config": "..."}: show a sub-network of the run's Pareto front

Hardening: the caller binds 127.0.0.1 unless told otherwise; the Host header must name an
allowed host (DNS rebinding), a state-changing request from another origin is refused, request
bodies are capped (413), images are decoded with a pixel cap checked before decoding (413) and
corrupt ones answered with a JSON error (400); models are opened at start only, never from a
request; every response carries nosniff, a strict Content-Security-Policy (no inline script),
no-referrer, frame denial and same-origin resource policies.
"""
from __future__ import annotations

import io
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import torch

from gancompress.errors import UserError
from gancompress.serve.runners import Demo

STATIC = Path(__file__).parent / "static"
MAX_BODY = 8 * 1024 * 1024
MAX_PIXELS = 4096 * 4096
MAX_BENCH_RUNS = 50
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")

SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' blob: data:; connect-src 'self'; "
                               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


class RequestError(Exception):
    """A bad request: answered with `status` and {"error": message}."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def require_demo_packages() -> None:
    """The optional web stack, or one clear message saying how to install it."""
    missing = []
    for name in ("starlette", "uvicorn"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise UserError(f"the demo needs {' and '.join(missing)}: pip install "
                        f"'gancompress[demo]'")


# ----------------------------------------------------------------------------------------------
# Decoding and encoding


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS, mode: str = "RGB"):
    """An encoded image -> PIL image (RGB, upright by its EXIF orientation; or its index values
    for mode "labels"); through imaging.open_checked, so the pixel count is checked from the
    header before anything is decoded (413 with the demo's own limit)."""
    from gancompress.imaging import ImageTooLarge, flatten_image, open_checked, to_8bit

    if not data:
        raise RequestError(400, "empty request body: send an image file")
    try:
        img = open_checked(data, name="the upload", limit=max_pixels, orient=mode != "labels",
                           what="label map" if mode == "labels" else "image")
        if mode != "labels":
            img = to_8bit(img, "the upload")
    except ImageTooLarge as err:
        size = f"{err.size[0]}x{err.size[1]} = " if err.size else ""
        raise RequestError(413, f"image is {size}{err.pixels:,} pixels; the demo accepts at "
                                f"most {err.limit:,} pixels") from None
    except UserError as err:
        raise RequestError(400, f"cannot decode the image: {_reason(str(err))} (send a PNG, "
                                f"JPEG, BMP, TIFF or WebP file)") from None
    if mode == "labels":
        if img.mode not in ("L", "P", "I", "I;16"):
            raise RequestError(400, f"a label map is a grey or palette image of class indices; "
                                    f"got a {img.mode} image")
        return img
    return flatten_image(img, 3)


def _reason(message: str) -> str:
    """'cannot read image the upload: REASON (the file is ...)' -> REASON."""
    text = message.split("the upload: ", 1)[-1]
    return text.split(" (the file is")[0].split(" (give ")[0][:200]


def _dims(query: Any, pixels: int, max_pixels: int) -> tuple[int, int]:
    try:
        w, h = int(query.get("w", "")), int(query.get("h", ""))
    except ValueError:
        raise RequestError(400, "raw pixels need ?w=WIDTH&h=HEIGHT") from None
    if w < 1 or h < 1:
        raise RequestError(400, "w and h must be positive")
    if w * h > max_pixels:
        raise RequestError(413, f"image is {w}x{h} = {w * h:,} pixels; the demo accepts at most "
                                f"{max_pixels:,} pixels")
    if w * h * pixels == 0:
        raise RequestError(400, "empty image")
    return w, h


def _resize(img, size: tuple[int, int]):
    """An RGB image at (H, W) = size, resized bicubically as `generate` does."""
    from PIL import Image

    if img.size == (size[1], size[0]):
        return img
    return img.resize((size[1], size[0]), Image.BICUBIC)


def input_image(body: bytes, content_type: str, query: Any, size: tuple[int, int],
                max_pixels: int):
    """The request's input image as RGB at the demo size."""
    from PIL import Image

    if content_type == "application/x-rgba":
        w, h = _dims(query, 4, max_pixels)
        if len(body) != w * h * 4:
            raise RequestError(400, f"raw RGBA of {w}x{h} is {w * h * 4} bytes, got {len(body)}")
        rgba = np.frombuffer(body, dtype=np.uint8).reshape(h, w, 4)
        img = Image.fromarray(np.ascontiguousarray(rgba[..., :3]), "RGB")
    else:
        img = decode_image(body, max_pixels)
    return _resize(img, size)


def input_labels(body: bytes, content_type: str, query: Any, size: tuple[int, int],
                 max_pixels: int, classes: int) -> np.ndarray:
    """The request's label indices (H, W) at the demo size (nearest resize: no new labels)."""
    from PIL import Image

    if content_type == "application/x-labels":
        w, h = _dims(query, 1, max_pixels)
        if len(body) != w * h:
            raise RequestError(400, f"a {w}x{h} label map is {w * h} bytes, got {len(body)}")
        labels = np.frombuffer(body, dtype=np.uint8).reshape(h, w)
    else:
        labels = np.asarray(decode_image(body, max_pixels, mode="labels"))
    if int(labels.max()) >= classes or int(labels.min()) < 0:
        raise RequestError(400, f"label index {int(labels.max())} out of range: the model has "
                                f"{classes} classes (0..{classes - 1})")
    if labels.shape != tuple(size):  # nearest: no label that was not painted
        labels = np.asarray(Image.fromarray(labels.astype(np.uint8)).resize(
            (size[1], size[0]), Image.NEAREST))
    return labels


def model_input(img_or_labels: Any, demo: Demo, in_channels: int) -> torch.Tensor:
    from gancompress.imaging import pil_to_tensor

    if demo.spec is not None:
        return demo.spec.tensor(img_or_labels)
    img = img_or_labels if in_channels == 3 else img_or_labels.convert("L")
    return pil_to_tensor(img)[None]


def encode_output(out: torch.Tensor, fmt: str) -> tuple[bytes, str]:
    """(1, C, H, W) in [-1, 1] -> raw RGBA or PNG bytes, and the media type."""
    from PIL import Image

    from gancompress.imaging import to_uint8

    array = to_uint8(out[0])
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    elif array.shape[-1] != 3:
        array = array[..., :3]
    if fmt == "rgba":
        rgba = np.concatenate([array, np.full(array.shape[:2] + (1,), 255, np.uint8)], -1)
        return rgba.tobytes(), "application/x-rgba"
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue(), "image/png"


# ----------------------------------------------------------------------------------------------
# The app


def create_app(demo: Demo, allowed_hosts: list[str] | tuple[str, ...] = LOOPBACK_HOSTS,
               max_body: int = MAX_BODY, max_pixels: int = MAX_PIXELS):
    """The Starlette application serving `demo`."""
    require_demo_packages()
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    allowed = list(allowed_hosts)

    async def read_body(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                raise RequestError(400, "bad Content-Length") from None
            if declared > max_body:
                raise RequestError(413, f"request body of {declared:,} bytes is over the "
                                        f"demo's limit of {max_body:,} bytes")
        chunks, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > max_body:
                raise RequestError(413, f"request body is over the demo's limit of "
                                        f"{max_body:,} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def media_type(request: Request) -> str:
        return request.headers.get("content-type", "").split(";")[0].strip().lower()

    def model_of(request: Request):
        key = request.path_params["model"]
        if key not in demo.models:
            raise RequestError(404, f"no model {key!r}; this demo shows "
                                    f"{', '.join(demo.models)}")
        return demo.models[key]

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})

    async def info(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(demo.info))

    async def run_model(request: Request) -> Response:
        model = model_of(request)
        fmt = request.query_params.get("format", "png")
        if fmt not in ("png", "rgba"):
            raise RequestError(400, "format is png or rgba")
        incremental = request.query_params.get("incremental", "0")
        if incremental not in ("0", "1"):
            raise RequestError(400, "incremental is 0 (dense) or 1 (recompute what changed)")
        body = await read_body(request)
        kind = media_type(request)
        ran: dict[str, Any] = {"incremental": False, "changed": None}

        def work() -> tuple[bytes, str, float, float]:
            start = time.perf_counter()
            if demo.spec is not None:
                source = input_labels(body, kind, request.query_params, demo.size, max_pixels,
                                      demo.spec.classes)
            else:
                source = input_image(body, kind, request.query_params, demo.size, max_pixels)
            batch = model_input(source, demo, model.in_channels)
            if incremental == "1":
                out, ms, what = model.run_incremental(batch)
                ran.update(what)
            else:
                out, ms = model.run(batch)
            data, media = encode_output(out, fmt)
            return data, media, ms, (time.perf_counter() - start) * 1e3

        data, media, ms, total = await run_in_threadpool(work)
        return Response(data, media_type=media, headers={
            "x-inference-ms": f"{ms:.3f}", "x-server-ms": f"{total:.3f}",
            "x-backend": model.session.backend, "x-width": str(demo.size[1]),
            "x-height": str(demo.size[0]), "cache-control": "no-store",
            "x-incremental": "1" if ran["incremental"] else "0",
            "x-changed": "" if ran["changed"] is None else f"{ran['changed']:.5f}",
            "x-dense-ms": "" if model.dense_ms is None else f"{model.dense_ms:.3f}"})

    async def upload(request: Request) -> Response:
        body = await read_body(request)

        def work() -> tuple[bytes, str]:
            if demo.spec is not None:
                labels = input_labels(body, "image/*", {}, demo.size, max_pixels,
                                      demo.spec.classes)
                return labels.astype(np.uint8).tobytes(), "application/x-labels"
            img = input_image(body, "image/*", {}, demo.size, max_pixels)
            buffer = io.BytesIO()
            img.save(buffer, format="PNG", compress_level=1)
            return buffer.getvalue(), "image/png"

        data, media = await run_in_threadpool(work)
        return Response(data, media_type=media, headers={"cache-control": "no-store"})

    async def example(request: Request) -> Response:
        def work() -> tuple[bytes, str]:
            example = demo.example()
            if demo.spec is not None:  # label ids, as /api/upload returns them
                return example.astype(np.uint8).tobytes(), "application/x-labels"
            return encode_output(example[None], "png")[0], "image/png"

        data, media = await run_in_threadpool(work)
        return Response(data, media_type=media, headers={"cache-control": "no-store"})

    async def benchmark(request: Request) -> Response:
        try:
            runs = int(request.query_params.get("runs", "10"))
        except ValueError:
            raise RequestError(400, "runs must be a whole number") from None
        if not 1 <= runs <= MAX_BENCH_RUNS:
            raise RequestError(400, f"runs must be between 1 and {MAX_BENCH_RUNS}")
        return JSONResponse(await run_in_threadpool(demo.benchmark, runs))

    async def subnet(request: Request) -> Response:
        body = await read_body(request)
        try:
            config = json.loads(body or b"{}").get("config")
        except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
            raise RequestError(400, 'send JSON {"config": "..."}') from None
        if not isinstance(config, str):
            raise RequestError(400, 'send JSON {"config": "..."}')
        chosen = await run_in_threadpool(demo.select_subnet, config)
        return JSONResponse({"model": chosen.info()})

    async def on_request_error(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    async def on_user_error(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=400)

    async def on_http(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    routes = [Route("/", index), Route("/api/info", info),
              Route("/api/run/{model}", run_model, methods=["POST"]),
              Route("/api/upload", upload, methods=["POST"]),
              Route("/api/example", example),
              Route("/api/benchmark", benchmark, methods=["POST"]),
              Route("/api/subnet", subnet, methods=["POST"]),
              Mount("/static", StaticFiles(directory=STATIC), name="static")]
    middleware = [Middleware(SecurityHeaders), Middleware(SameOrigin, allowed_hosts=allowed),
                  Middleware(TrustedHostMiddleware, allowed_hosts=allowed)]
    return Starlette(routes=routes, middleware=middleware, exception_handlers={
        RequestError: on_request_error, UserError: on_user_error, HTTPException: on_http})


class SecurityHeaders:
    """ASGI middleware: the security headers on every response (errors included)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.decode("latin-1").lower() not in SECURITY_HEADERS]
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class SameOrigin:
    """ASGI middleware: refuse (403) a state-changing request sent by a page of another origin
    (a browser names it in Origin / Sec-Fetch-Site); same-origin pages and non-browser clients
    pass. With no CORS headers ever sent, other origins cannot read any response either."""

    def __init__(self, app: Any, allowed_hosts: list[str]):
        self.app = app
        self.allowed = set(allowed_hosts)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD"):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                       for k, v in scope.get("headers", [])}
            origin = headers.get("origin")
            site = headers.get("sec-fetch-site")
            foreign = site == "cross-site" or (
                origin is not None and (origin == "null" or
                                        (urlsplit(origin).hostname or "") not in self.allowed))
            if foreign:
                from starlette.responses import JSONResponse

                response = JSONResponse({"error": "cross-origin requests are not accepted"},
                                        status_code=403)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


# ----------------------------------------------------------------------------------------------
# Serving


def check_host(host: str, public: bool) -> None:
    """Loopback unless `public` was asked for explicitly."""
    if host in LOOPBACK_HOSTS:
        return
    if not public:
        raise UserError(f"--host {host} would expose the demo beyond this machine; add --public "
                        f"to do that on purpose (anyone who can reach it can use the models)")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free port), so the URL is known before serving."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {err.strerror}; choose another --port "
                        f"(0 picks a free one)") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class Served:
    """A uvicorn server running `app` on a background thread (tests, benchmarks)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0):
        import uvicorn

        self.sock = bind(host, port)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}/"
        self.server = uvicorn.Server(uvicorn_config(app, host, self.port))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started and self.thread.is_alive() and time.time() < deadline:
            time.sleep(0.02)
        if not self.server.started:
            raise RuntimeError("the demo server did not start")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def uvicorn_config(app: Any, host: str, port: int):
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                          server_header=False, date_header=False, limit_concurrency=64,
                          timeout_keep_alive=30, lifespan="off")


def serve(demo: Demo, host: str = "127.0.0.1", port: int = 0, public: bool = False,
          allow_hosts: list[str] | None = None, max_body: int = MAX_BODY,
          max_pixels: int = MAX_PIXELS, log=print) -> None:
    """Serve `demo` until interrupted; prints the URL first."""
    require_demo_packages()
    import uvicorn

    check_host(host, public)
    allowed = list(LOOPBACK_HOSTS) + list(allow_hosts or [])
    if host not in ("0.0.0.0", "::") and host not in allowed:
        allowed.append(host)
    app = create_app(demo, allowed, max_body, max_pixels)
    sock = bind(host, port)
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    if host not in LOOPBACK_HOSTS:
        log(f"WARNING: the demo listens on {host}:{port}, beyond this machine; anyone who can "
            f"reach it can run the models. Accepted Host names: {', '.join(allowed)} "
            f"(add more with --allow-host)")
    shown_models = ", ".join(f"{m.label} ({m.session.backend})" for m in demo.models.values())
    log(f"gancompress demo: {shown_models} at {demo.size[0]}x{demo.size[1]}")
    log(f"open http://{'[' + shown + ']' if ':' in shown else shown}:{port}/  (Ctrl+C stops)")
    server = uvicorn.Server(uvicorn_config(app, host, port))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
