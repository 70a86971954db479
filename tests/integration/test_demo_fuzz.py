"""The demo server under hostile input (issue 26): a decompression bomb answers 413 with the
demo's own limit, a text upload a clear JSON message, uploaded photos are upright by their EXIF
orientation, and a bounded HTTP fuzz (127.0.0.1 only, a fixed number of seeded requests) never
gets a 5xx, always gets JSON errors from the API, and leaves the server answering correctly."""
from __future__ import annotations

import http.client
import io
import json
import random

import numpy as np
import pytest
from helpers import png_declaring
from PIL import Image

pytest.importorskip("starlette", reason="the demo extra is not installed: pip install .[demo]")
pytest.importorskip("starlette.testclient", reason="Starlette's test client needs httpx2 (the "
                    "demo extra)")

from starlette.testclient import TestClient  # noqa: E402

from gancompress.serve.server import MAX_PIXELS, Served, create_app  # noqa: E402

BASE = "http://127.0.0.1"


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()



def test_bomb_upload_is_413_with_the_demos_own_limit(demo):
    client = TestClient(create_app(demo), base_url=BASE)
    for route in ("/api/upload", "/api/run/compact"):
        r = client.post(route, content=png_declaring(50000, 50000),
                        headers={"content-type": "image/png"})
        assert r.status_code == 413, r.text
        assert r.json()["error"] == (f"image is 50000x50000 = 2,500,000,000 pixels; the demo "
                                     f"accepts at most {MAX_PIXELS:,} pixels")
    small = TestClient(create_app(demo, max_pixels=1000), base_url=BASE)
    r = small.post("/api/upload", content=png(np.zeros((40, 40, 3), np.uint8)))
    assert r.status_code == 413 and "at most 1,000 pixels" in r.json()["error"]


def test_text_upload_is_a_clear_json_message(demo):
    client = TestClient(create_app(demo), base_url=BASE)
    r = client.post("/api/upload", content=b"this is a text file\n",
                    headers={"content-type": "image/png"})
    assert r.status_code == 400 and r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert "BytesIO" not in error and "object at 0x" not in error
    assert error.startswith("cannot decode the image: it is a text file (it begins 'this is a "
                            "text file'), not an image")


def test_uploaded_photo_is_upright_by_its_exif_orientation(demo):
    array = np.zeros((16, 32, 3), np.uint8)  # 32 wide, 16 high: top half white
    array[:8] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise: the white half on the right
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=95, exif=exif.tobytes())
    client = TestClient(create_app(demo), base_url=BASE)
    r = client.post("/api/upload", content=buffer.getvalue(), headers={"content-type":
                                                                       "image/jpeg"})
    assert r.status_code == 200, r.text
    shown = np.asarray(Image.open(io.BytesIO(r.content)).convert("L"), dtype=float)
    assert shown.shape == (32, 32)
    assert shown[:, -6:].mean() > 200 and shown[:, :6].mean() < 60


# ----------------------------------------------------------------------------------------------
# Bounded HTTP fuzz

REQUESTS = 150
ROUTES = ["/", "/api/info", "/api/run/compact", "/api/run/teacher", "/api/run/nope",
          "/api/upload", "/api/example", "/api/benchmark", "/api/subnet", "/static/app.js",
          "/static/../server.py", "/api/", "/api/run/", "/api/run/compact/extra", "/nope",
          "/api/info%00", "/%2e%2e/etc/passwd", "/api/run/%ff"]
JSON_ROUTES = ("/api/info", "/api/benchmark", "/api/subnet")
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]
TYPES = ["image/png", "image/jpeg", "application/x-rgba", "application/x-labels",
         "application/json", "text/plain", "multipart/form-data; boundary=x", "", "image/*"]


def _bodies(rng: random.Random, real: bytes) -> list[bytes]:
    mutated = bytearray(real)
    for _ in range(rng.randint(1, 8)):
        mutated[rng.randrange(len(mutated))] = rng.randrange(256)
    return [b"", rng.randbytes(rng.randint(1, 3000)), real, bytes(mutated),
            real[:rng.randint(1, len(real))], b"not an image at all", png_declaring(50000, 50000),
            json.dumps({"config": rng.choice(["", "8_8", "x" * 300, None, 5])}).encode(),
            b"\x00" * (32 * 32 * 4), rng.randbytes(rng.randint(1, 64)) * 64]


def _query(rng: random.Random) -> str:
    keys = ["format", "w", "h", "runs", "incremental", "x", ""]
    values = ["png", "rgba", "gif", "0", "1", "-1", "32", "99999999", "1e3", "%00", "", "NaN"]
    parts = [f"{rng.choice(keys)}={rng.choice(values)}" for _ in range(rng.randint(0, 4))]
    return ("?" + "&".join(parts)) if parts else ""


def test_bounded_http_fuzz_never_breaks_the_server(demo):
    rng = random.Random(26)
    real = png(np.random.default_rng(1).integers(0, 255, (32, 32, 3), dtype=np.uint8))
    with Served(create_app(demo)) as served:
        answers: dict[int, int] = {}
        for i in range(REQUESTS):
            route = rng.choice(ROUTES)
            plausible = rng.random() < 0.5  # half of them near a real call, so 2xx paths run
            method = (("POST" if route.startswith(("/api/run", "/api/upload", "/api/bench",
                                                   "/api/subnet")) else "GET")
                      if plausible else rng.choice(METHODS))
            path = route + ("" if plausible and rng.random() < 0.5 else _query(rng))
            body = b""
            if method not in ("GET", "HEAD"):
                body = real if plausible and rng.random() < 0.5 else rng.choice(_bodies(rng, real))
            headers = {"Content-Type": "image/png" if plausible else rng.choice(TYPES)}
            if rng.random() < 0.1:
                headers["Content-Length"] = rng.choice(["-5", "abc", "999999999999"])
            connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=60)
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                status, kind = response.status, response.getheader("content-type", "")
            except (http.client.HTTPException, ConnectionError):
                # the server may close a connection whose headers lie (Content-Length)
                assert "Content-Length" in headers, (method, path)
                continue
            finally:
                connection.close()
            answers[status // 100] = answers.get(status // 100, 0) + 1
            where = f"request {i}: {method} {path} -> {status} {data[:200]!r}"
            assert 200 <= status < 500, where
            forged = "Content-Length" in headers  # refused by the HTTP layer, before any route
            if status >= 400 and method != "HEAD" and not forged:
                assert kind.startswith("application/json"), where
                assert json.loads(data)["error"], where
            elif status < 300 and method != "HEAD" and route in JSON_ROUTES:
                assert isinstance(json.loads(data), dict), where
        assert answers.get(2, 0) > 15 and answers.get(4, 0) > 50  # both kinds were reached
        # and the server still does its job
        connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=60)
        connection.request("POST", "/api/run/compact", body=real,
                           headers={"Content-Type": "image/png"})
        response = connection.getresponse()
        out = Image.open(io.BytesIO(response.read()))
        assert response.status == 200 and out.size == (32, 32)
        connection.close()
