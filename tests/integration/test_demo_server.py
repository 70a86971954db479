"""`gancompress demo` server: correct images for tiny random-weight models, limits, hardening."""
from __future__ import annotations

import concurrent.futures
import io
import json
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from helpers import quiet
from PIL import Image

pytest.importorskip("starlette", reason="the demo extra is not installed: pip install .[demo]")
pytest.importorskip("starlette.testclient", reason="Starlette's test client needs httpx2 (the "
                    "demo extra)")

from starlette.testclient import TestClient  # noqa: E402

from gancompress.cli import main  # noqa: E402
from gancompress.imaging import pil_to_tensor, to_uint8  # noqa: E402
from gancompress.models.checkpoint import load_generator, save_generator  # noqa: E402
from gancompress.models.resnet import ResnetGenerator  # noqa: E402
from gancompress.serve.runners import Demo, LabelSpec, instance_edges  # noqa: E402
from gancompress.serve.server import Served, create_app  # noqa: E402

BASE = "http://127.0.0.1"


@pytest.fixture
def client(demo):
    return TestClient(create_app(demo), base_url=BASE)


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def expected(model: torch.nn.Module, rgb: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return to_uint8(model(pil_to_tensor(Image.fromarray(rgb))[None])[0])


def test_info_lists_run_models_figures_and_front(client, demo_run):
    info = client.get("/api/info").json()
    assert info["size"] == [32, 32] and info["mode"] == "image" and info["examples"]
    keys = [m["key"] for m in info["models"]]
    assert keys == ["compact", "teacher"]
    compact, teacher = info["models"]
    assert compact["config"] == demo_run["chosen"] and compact["backend"] == "pytorch"
    assert compact["quality"]["values"] == {"l1": 0.25, "psnr": 18.5}
    assert compact["macs"] < teacher["macs"] and compact["params"] < teacher["params"]
    assert [p["config"] for p in info["pareto"]] == [demo_run["other"], demo_run["chosen"]]
    assert [p["chosen"] for p in info["pareto"]] == [False, True]


@pytest.mark.parametrize("fmt", ["png", "rgba"])
def test_run_returns_each_models_output(client, demo_run, fmt):
    rgb = np.random.default_rng(3).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    compact = load_generator(demo_run["run"] / "compact.pth")
    for key, model in (("compact", compact), ("teacher", demo_run["teacher"])):
        r = client.post(f"/api/run/{key}?format={fmt}", content=png(rgb),
                        headers={"content-type": "image/png"})
        assert r.status_code == 200, r.text
        if fmt == "png":
            out = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"))
        else:
            assert r.headers["content-type"] == "application/x-rgba"
            out = np.frombuffer(r.content, np.uint8).reshape(32, 32, 4)
            assert (out[..., 3] == 255).all()
            out = out[..., :3]
        want = expected(model, rgb)
        assert np.abs(out.astype(int) - want.astype(int)).max() <= 1
        assert out.std() > 1  # not blank
        assert float(r.headers["x-inference-ms"]) > 0
        assert float(r.headers["x-server-ms"]) >= float(r.headers["x-inference-ms"])


def test_raw_rgba_input_and_resize(client, demo_run):
    rgb = np.random.default_rng(4).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    rgba = np.concatenate([rgb, np.full((32, 32, 1), 255, np.uint8)], -1)
    r = client.post("/api/run/teacher?format=rgba&w=32&h=32", content=rgba.tobytes(),
                    headers={"content-type": "application/x-rgba"})
    out = np.frombuffer(r.content, np.uint8).reshape(32, 32, 4)[..., :3]
    assert np.abs(out.astype(int) - expected(demo_run["teacher"], rgb).astype(int)).max() <= 1
    # any other size is resized to the demo size
    r = client.post("/api/run/teacher", content=png(np.zeros((50, 70, 3), np.uint8)),
                    headers={"content-type": "image/png"})
    assert Image.open(io.BytesIO(r.content)).size == (32, 32)
    r = client.post("/api/run/teacher?format=rgba&w=32&h=32", content=b"\0" * 100,
                    headers={"content-type": "application/x-rgba"})
    assert r.status_code == 400 and "4096 bytes, got 100" in r.json()["error"]


def test_limits_and_bad_input(demo):
    client = TestClient(create_app(demo, max_body=20_000, max_pixels=64 * 64), base_url=BASE)
    big = client.post("/api/run/compact", content=b"x" * 30_000,
                      headers={"content-type": "image/png"})
    assert big.status_code == 413 and "limit of 20,000 bytes" in big.json()["error"]

    def chunks():
        for _ in range(30):
            yield b"y" * 1000

    streamed = client.post("/api/upload", content=chunks(), headers={"content-type": "image/png"})
    assert streamed.status_code == 413
    pixels = client.post("/api/upload", content=png(np.zeros((65, 65, 3), np.uint8)),
                         headers={"content-type": "image/png"})
    assert pixels.status_code == 413 and "65x65 = 4,225 pixels" in pixels.json()["error"]
    raw = client.post("/api/run/compact?format=rgba&w=100&h=100", content=b"",
                      headers={"content-type": "application/x-rgba"})
    assert raw.status_code == 413
    corrupt = client.post("/api/run/compact", content=png(np.zeros((8, 8, 3), np.uint8))[:40],
                          headers={"content-type": "image/png"})
    assert corrupt.status_code == 400 and "cannot decode the image" in corrupt.json()["error"]
    junk = client.post("/api/upload", content=b"not an image at all",
                       headers={"content-type": "image/png"})
    assert junk.status_code == 400 and junk.headers["content-type"] == "application/json"
    empty = client.post("/api/upload", content=b"")
    assert empty.status_code == 400 and "empty request body" in empty.json()["error"]
    assert client.post("/api/run/nope", content=b"").status_code == 404
    assert "no model 'nope'" in client.post("/api/run/nope", content=b"").json()["error"]
    assert client.post("/api/run/compact?format=gif", content=b"").status_code == 400


def test_upload_and_example(client):
    r = client.post("/api/upload", content=png(np.full((20, 10, 3), 200, np.uint8)),
                    headers={"content-type": "image/png"})
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (32, 32)
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))  # transparent -> composited on white
    buffer = io.BytesIO()
    rgba.save(buffer, format="PNG")
    r = client.post("/api/upload", content=buffer.getvalue(), headers={"content-type": "image/png"})
    assert np.asarray(Image.open(io.BytesIO(r.content))).min() == 255
    ex = client.get("/api/example")
    assert ex.status_code == 200 and Image.open(io.BytesIO(ex.content)).size == (32, 32)


def test_hardening_headers_host_origin(client):
    page = client.get("/")
    assert page.status_code == 200 and b"app.js" in page.content
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    evil = TestClient(client.app, base_url="http://evil.example")
    wrong = evil.get("/api/info")
    assert wrong.status_code == 400 and wrong.headers["x-content-type-options"] == "nosniff"
    r = client.get("/api/info", headers={"origin": "http://evil.example"})
    assert "access-control-allow-origin" not in r.headers  # no CORS
    cross = client.post("/api/benchmark?runs=1", headers={"origin": "http://evil.example"})
    assert cross.status_code == 403 and "cross-origin" in cross.json()["error"]
    site = client.post("/api/benchmark?runs=1", headers={"sec-fetch-site": "cross-site"})
    assert site.status_code == 403
    same = client.post("/api/benchmark?runs=1", headers={"origin": "http://127.0.0.1:8000"})
    assert same.status_code == 200
    assert client.get("/api/run/compact").status_code == 405
    assert client.get("/static/../runners.py").status_code == 404


def test_benchmark_reports_speedup_and_mac_ratio(client):
    r = client.post("/api/benchmark?runs=3").json()
    assert r["reference"] == "teacher" and r["runs"] == 3
    c, t = r["models"]["compact"], r["models"]["teacher"]
    assert c["runs"] == 3 and c["median_ms"] > 0 and c["p10_ms"] <= c["p90_ms"]
    assert t["speedup"] == pytest.approx(1.0) and t["mac_ratio"] == pytest.approx(1.0)
    assert c["speedup"] == pytest.approx(t["median_ms"] / c["median_ms"])
    assert c["mac_ratio"] == pytest.approx(t["macs"] / c["macs"]) and c["mac_ratio"] > 1
    assert client.post("/api/benchmark?runs=0").status_code == 400
    assert client.post("/api/benchmark?runs=x").status_code == 400


def test_subnet_slider_extracts_front_points_only(client, demo_run):
    rgb = np.random.default_rng(5).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    r = client.post("/api/subnet", content=json.dumps({"config": demo_run["other"]}))
    assert r.status_code == 200, r.text
    assert r.json()["model"]["config"] == demo_run["other"]
    assert r.json()["model"]["quality"]["values"] == {"l1": 0.31}
    cached = demo_run["run"] / "demo-cache" / f"subnet-{demo_run['other']}.pth"
    out = client.post("/api/run/compact", content=png(rgb), headers={"content-type": "image/png"})
    got = np.asarray(Image.open(io.BytesIO(out.content)).convert("RGB"))
    assert np.abs(got.astype(int) - expected(load_generator(cached), rgb).astype(int)).max() <= 1
    back = client.post("/api/subnet", content=json.dumps({"config": demo_run["chosen"]}))
    assert back.json()["model"]["file"] == "compact.pth"
    bad = client.post("/api/subnet", content=json.dumps({"config": "8_8_8_8_8_8_8_8"}))
    assert bad.status_code == 400 and "not on this run's searched Pareto front" in bad.text
    assert client.post("/api/subnet", content=b"[1]").status_code == 400
    assert client.post("/api/subnet", content=b"{").status_code == 400


def test_concurrent_requests_on_real_server(demo):
    rgb = np.random.default_rng(6).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    body = png(rgb)
    with Served(create_app(demo)) as served:
        def call(i: int) -> tuple[int, bytes]:
            key = ("compact", "teacher")[i % 2]
            req = urllib.request.Request(f"{served.url}api/run/{key}", data=body, method="POST",
                                         headers={"Content-Type": "image/png"})
            with urllib.request.urlopen(req, timeout=60) as response:
                return response.status, response.read()

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(call, range(16)))
        assert all(status == 200 for status, _ in results)
        # same input -> same output, whichever request ran alongside
        assert len({data for i, (_, data) in enumerate(results) if i % 2 == 0}) == 1
        bad = urllib.request.Request(f"{served.url}api/info",
                                     headers={"Host": "rebind.example"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(bad, timeout=10)
        assert err.value.code == 400


@pytest.fixture
def label_model(tmp_path, label_generator, one_thread):
    model = label_generator(label_nc=5, ngf=4, n_blocks=3)
    for p in model.parameters():
        p.data.normal_(0, 0.3)
    path = tmp_path / "labels.pth"
    save_generator(model, path)
    return load_generator(path), path


def test_instance_edges_follow_the_published_rule():
    ids = np.array([[1, 1, 2], [1, 1, 2], [3, 3, 3]])
    edges = instance_edges(ids)
    want = np.array([[0, 1, 1], [1, 1, 1], [1, 1, 1]], bool)
    assert (edges == want).all()
    assert not instance_edges(np.zeros((4, 4), int)).any()
    spec = LabelSpec(3, dontcare=True, instance=True)
    x = spec.tensor(np.array([[0, 3], [2, 2]]))
    assert x.shape == (1, 5, 2, 2) and x[0, :4].sum(0).eq(1).all()
    assert x[0, 3, 0, 1] == 1 and x[0, 4].tolist() == [[1, 1], [1, 1]]
    assert spec.palette()[3]["name"] == "don't care"
    assert LabelSpec(35).palette()[7] == {"index": 7, "name": "road", "color": [128, 64, 128]}


def _post_labels(client, key: str, labels: np.ndarray, rgba: bool = True):
    """POST a label-id map to /api/run/KEY (as the page sends it)."""
    h, w = labels.shape
    return client.post(f"/api/run/{key}?{'format=rgba&' if rgba else ''}w={w}&h={h}",
                       content=labels.tobytes(), headers={"content-type": "application/x-labels"})


def _rgb(response, h: int, w: int) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.frombuffer(response.content, np.uint8).reshape(h, w, 4)[..., :3]


def test_label_mode_builds_onehot_and_edges(label_model):
    model, path = label_model
    demo = Demo.open([path], size=(16, 16), backend="torch", threads=1, log=quiet,
                     cache=path.parent / "cache")
    client = TestClient(create_app(demo), base_url=BASE)
    info = client.get("/api/info").json()
    assert info["mode"] == "label" and info["edges"] and len(info["palette"]) == 5
    assert info["models"][0]["in_channels"] == 6
    labels = np.zeros((16, 16), np.uint8)
    labels[4:12, 2:9] = 3
    labels[10:, 10:] = 4
    out = _rgb(_post_labels(client, "labels", labels), 16, 16)
    with torch.no_grad():
        want = to_uint8(model(LabelSpec(5).tensor(labels))[0])
    assert np.abs(out.astype(int) - want.astype(int)).max() <= 1
    labels[0, 0] = 9
    bad = _post_labels(client, "labels", labels, rgba=False)
    assert bad.status_code == 400 and "out of range" in bad.json()["error"]
    up = client.post("/api/upload", content=png(np.full((8, 8), 2, np.uint8)),
                     headers={"content-type": "image/png"})
    assert up.headers["content-type"] == "application/x-labels"
    assert np.frombuffer(up.content, np.uint8).tolist() == [2] * 256
    colour = client.post("/api/upload", content=png(np.zeros((8, 8, 3), np.uint8)))
    assert colour.status_code == 400 and "class indices" in colour.json()["error"]
    assert client.post("/api/benchmark?runs=1").json()["models"]["labels"]["runs"] == 1


def test_spade_generator_is_served_in_label_mode(tmp_path, one_thread):
    from gancompress.data.segmaps import semantic_input
    from gancompress.models.spade import SpadeGenerator

    torch.manual_seed(0)
    model = SpadeGenerator(ngf=2, in_channels=5, upsampling="normal").eval()  # 4 labels + edges
    save_generator(model, tmp_path / "gaugan.pth")
    demo = Demo.open([tmp_path / "gaugan.pth"], size=(32, 64), backend="torch", threads=1,
                     log=quiet, cache=tmp_path / "cache")
    client = TestClient(create_app(demo), base_url=BASE)
    info = client.get("/api/info").json()
    assert info["mode"] == "label" and info["edges"] and len(info["palette"]) == 4
    labels = np.zeros((32, 64), np.uint8)
    labels[8:24, 10:40] = 2
    labels[20:, 50:] = 3
    out = _rgb(_post_labels(client, "gaugan", labels), 32, 64)
    ids = torch.from_numpy(labels.astype(np.int64))[None]
    with torch.no_grad():  # the dataset's own encoding, the instance map = the label map
        want = to_uint8(model(semantic_input(ids, ids, 4))[0])
    assert np.abs(out.astype(int) - want.astype(int)).max() <= 1
    labels[0, 0] = 4  # one past the 4 classes
    bad = _post_labels(client, "gaugan", labels, rgba=False)
    assert bad.status_code == 400 and "out of range" in bad.json()["error"]


def test_incremental_strokes_recompute_what_changed(tmp_path, one_thread):
    """A stroke preview (incremental=1) recomputes only what changed and says how much; the
    dense pass at stroke end gives the model's exact output."""
    from gancompress.data.segmaps import semantic_input
    from gancompress.models.spade import SpadeGenerator

    torch.manual_seed(0)
    model = SpadeGenerator(ngf=2, in_channels=5, upsampling="normal").eval()
    save_generator(model, tmp_path / "gaugan.pth")
    demo = Demo.open([tmp_path / "gaugan.pth"], size=(64, 64), backend="torch", threads=1,
                     log=quiet, cache=tmp_path / "cache")
    client = TestClient(create_app(demo), base_url=BASE)
    assert client.get("/api/info").json()["models"][0]["incremental"] is True
    labels = np.zeros((64, 64), np.uint8)
    labels[8:40, 10:40] = 2

    def post(incremental: str):
        return client.post(f"/api/run/gaugan?format=rgba&w=64&h=64&incremental={incremental}",
                           content=labels.tobytes(),
                           headers={"content-type": "application/x-labels"})

    first = post("1")  # the session's first input: a dense pass that fills its caches
    assert first.headers["x-incremental"] == "0"
    labels[50:54, 50:56] = 3  # a small stroke
    preview = post("1")
    assert preview.headers["x-incremental"] == "1"
    assert 0 < float(preview.headers["x-changed"]) < 0.05
    final = post("0")
    assert final.headers["x-incremental"] == "0" and float(final.headers["x-dense-ms"]) > 0
    ids = torch.from_numpy(labels.astype(np.int64))[None]
    with torch.no_grad():
        want = to_uint8(model(semantic_input(ids, ids, 4))[0])
    assert np.abs(_rgb(final, 64, 64).astype(int) - want.astype(int)).max() <= 1
    assert np.abs(_rgb(preview, 64, 64).astype(int) - want.astype(int)).mean() < 2
    assert post("2").status_code == 400


def test_label_run_folder_serves_at_its_size_with_label_examples(tmp_path, one_thread):
    """A GauGAN compression run: the demo takes the run's 32x64 size (not a square crop) and
    its random examples are held-out label maps, sent as label ids."""
    from gancompress.models.spade import SpadeGenerator

    torch.manual_seed(0)
    run, data = tmp_path / "run", tmp_path / "data" / "train"
    for folder in ("labels", "instances"):
        (data / folder).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        ids = np.kron(rng.integers(0, 4, (4, 8)), np.ones((8, 8))).astype(np.uint8)
        for folder in ("labels", "instances"):
            Image.fromarray(ids).save(data / folder / f"{i}.png")
    for name in ("teacher.pth", "run/compact.pth"):
        save_generator(SpadeGenerator(ngf=2, in_channels=5, upsampling="normal").eval(),
                       tmp_path / name)
    (run / "held_out.txt").write_text("train/labels/2.png\n")
    (run / "compress.json").write_text(json.dumps({
        "data": {"root": str(tmp_path / "data"), "mode": "labels", "label_layout": "folders",
                 "crop_size": 64, "aspect_ratio": 2.0, "label_nc": 4},
        "compress": {"teacher": str(tmp_path / "teacher.pth"), "budget": "1/2"}}))
    demo = Demo.open([run], backend="torch", threads=1, log=quiet)
    client = TestClient(create_app(demo), base_url=BASE)
    info = client.get("/api/info").json()
    assert info["size"] == [32, 64] and info["mode"] == "label" and info["examples"]
    r = client.get("/api/example")
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-labels"
    with Image.open(data / "labels" / "2.png") as img:
        assert np.frombuffer(r.content, np.uint8).reshape(32, 64).tolist() == \
            np.asarray(img).tolist()  # the held-out map, id for id
    out = client.post("/api/run/compact?w=64&h=32", content=r.content,
                      headers={"content-type": "application/x-labels"})
    assert out.status_code == 200 and out.headers["content-type"] == "image/png"


@pytest.mark.slow
def test_onnx_backend_is_verified_and_cached(tmp_path, one_thread):
    model = ResnetGenerator(ngf=4, n_blocks=3)
    for p in model.parameters():
        p.data.normal_(0, 0.3)
    save_generator(model.eval(), tmp_path / "g.pth")
    cache = tmp_path / "cache"
    demo = Demo.open([tmp_path / "g.pth"], size=(16, 16), backend="onnx", cache=cache,
                     threads=1, log=quiet)
    assert demo.models["g"].session.backend == "onnxruntime"
    exported = list(cache.glob("g-*-16x16.onnx"))
    assert len(exported) == 1
    stamp = exported[0].stat().st_mtime_ns
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    out, ms = demo.models["g"].run(x)
    with torch.no_grad():
        assert (torch.as_tensor(out) - model(x)).abs().max() < 1e-3 and ms > 0
    again = Demo.open([tmp_path / "g.pth"], size=(16, 16), backend="auto", cache=cache,
                      threads=1, log=quiet)
    assert again.models["g"].session.backend in ("onnxruntime", "openvino")
    assert exported[0].stat().st_mtime_ns == stamp  # reused, not exported again


def test_cli_refuses_before_serving(demo_run, tmp_path, capsys):
    assert main(["demo", str(demo_run["run"]), "--host", "0.0.0.0"]) == 2
    assert "--public" in capsys.readouterr().err
    assert main(["demo", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["demo", str(tmp_path / "empty")]) == 2
    assert "no compact.pth" in capsys.readouterr().err
    assert main(["demo", str(demo_run["run"]), "--size", "30", "30", "--backend", "torch"]) == 2
    assert "must each be a positive multiple of 4" in capsys.readouterr().err


def test_missing_extra_names_the_install_command(monkeypatch, demo_run, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert main(["demo", str(demo_run["run"])]) == 2
    assert "pip install 'gancompress[demo]'" in capsys.readouterr().err


def test_auto_backend_falls_back_to_pytorch(tmp_path, monkeypatch, one_thread):
    import sys

    import gancompress.deploy
    from gancompress.errors import UserError

    def refuse(*args, **kwargs):
        raise UserError("the exporter cannot export this model")

    monkeypatch.setattr(gancompress.deploy, "export_onnx", refuse)
    monkeypatch.setitem(sys.modules, "gancompress.deploy.openvino", None)  # not installed
    monkeypatch.delattr(gancompress.deploy, "openvino", raising=False)
    save_generator(ResnetGenerator(ngf=4, n_blocks=3), tmp_path / "g.pth")
    lines: list[str] = []
    demo = Demo.open([tmp_path / "g.pth"], size=(16, 16), cache=tmp_path / "c", threads=1,
                     log=lines.append)
    assert demo.models["g"].session.backend == "pytorch"
    assert any("onnx cannot run it (the exporter cannot export" in line for line in lines)
    with pytest.raises(UserError, match="backend onnx cannot run g.pth"):
        Demo.open([tmp_path / "g.pth"], size=(16, 16), backend="onnx", cache=tmp_path / "c",
                  log=quiet)


def test_auto_backend_prefers_openvino_when_installed(tmp_path, monkeypatch, one_thread):
    """The guarded OpenVINO path: used when gancompress.deploy.openvino is importable, its
    export cached per checkpoint and size (a stand-in module records the calls)."""
    import sys
    import types

    model = ResnetGenerator(ngf=4, n_blocks=3).eval()
    save_generator(model, tmp_path / "g.pth")
    calls: list[str] = []

    class Runner:
        def __init__(self, path, threads=None):
            self.path, self.threads = path, threads

        def __call__(self, batch):
            calls.append("run")
            with torch.no_grad():
                return model(batch)

    def export(m, path, input_size, threads=None):
        calls.append(f"export {tuple(input_size)}")
        path.write_text("ir")

    fake = types.ModuleType("gancompress.deploy.openvino")
    fake.require_openvino = lambda: None
    fake.export_openvino, fake.OpenVinoRunner = export, Runner
    monkeypatch.setitem(sys.modules, "gancompress.deploy.openvino", fake)
    import gancompress.deploy

    monkeypatch.setattr(gancompress.deploy, "openvino", fake, raising=False)
    for _ in range(2):
        demo = Demo.open([tmp_path / "g.pth"], size=(16, 16), cache=tmp_path / "c", threads=1,
                         log=quiet)
        assert demo.models["g"].session.backend == "openvino"
    assert calls.count("export (1, 3, 16, 16)") == 1 and calls.count("run") == 2  # compiled once
    assert len(list((tmp_path / "c").glob("g-*-16x16.xml"))) == 1
