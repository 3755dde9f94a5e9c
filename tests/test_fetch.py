"""fetch: download from a local HTTP server (127.0.0.1 only), resume, verify, import, cache."""

import hashlib
import http.server
import json
import threading

import numpy as np
import pytest

from conftest import need_module
from edgecnn.apps.pretrained import fetch, registry
from edgecnn.apps.resolve import resolve
from edgecnn.cli.main import main
from edgecnn.core import reference
from edgecnn.errors import EdgecnnError
from testutil import tiny_cnn, write_image

need_module("onnx", "onnx", "the served model is ONNX: needs the onnx extra")
pytestmark = pytest.mark.onnx


class _Server:
    """Serves one file with HTTP Range support; can cut a response short once."""

    def __init__(self, payload: bytes):
        self.payload, self.cut_once, self.ranges = payload, False, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                start = 0
                rng = self.headers.get("Range")
                server.ranges.append(rng)
                if rng:
                    start = int(rng.split("=")[1].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range",
                                     f"bytes {start}-{len(server.payload) - 1}/"
                                     f"{len(server.payload)}")
                else:
                    self.send_response(200)
                body = server.payload[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_once:  # send half, then drop the connection
                    server.cut_once = False
                    self.wfile.write(body[:len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/model.onnx"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def served(tmp_path, monkeypatch):
    from edgecnn.formats.onnx_export import export

    g = tiny_cnn(classes=1000)
    payload = export(g, tmp_path / "src.onnx").read_bytes()
    server = _Server(payload)
    reg = tmp_path / "registry.json"
    entry = {"url": server.url, "sha256": hashlib.sha256(payload).hexdigest(),
             "format": "onnx", "license": "test", "description": "a test model"}
    reg.write_text(json.dumps({"tiny_test": entry,
                               "tiny_corrupt": dict(entry, sha256="0" * 64)}))
    monkeypatch.setenv("EDGECNN_MODEL_REGISTRY", str(reg))
    monkeypatch.setenv("EDGECNN_CACHE", str(tmp_path / "cache"))
    yield server, g
    server.close()


def test_fetch_imports_and_caches(served, tmp_path, capsys):
    server, g = served
    assert "mobilenet_v2_1.0_224_quant" in registry() and "tiny_test" in registry()
    path = fetch("tiny_test")
    h = resolve("tiny_test")  # classify and card accept the name
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype(np.float32)
    np.testing.assert_allclose(reference.run(h, x), reference.run(g, x), rtol=1e-5, atol=1e-6)
    assert fetch("tiny_test") == path and len(server.ranges) == 1  # cached: no second download
    img = write_image(tmp_path / "a.png")
    assert main(["classify", "tiny_test", str(img), "--top", "1"]) == 0
    assert str(img) in capsys.readouterr().out


def test_interrupted_download_resumes(served):
    server, _ = served
    server.cut_once = True
    with pytest.raises(EdgecnnError, match="interrupted|resume"):
        fetch("tiny_test")
    fetch("tiny_test")
    assert server.ranges[0] is None and server.ranges[1].startswith("bytes=")
    assert int(server.ranges[1].split("=")[1].rstrip("-")) > 0


def test_checksum_mismatch_is_rejected(served, tmp_path):
    with pytest.raises(EdgecnnError, match="checksum mismatch for tiny_corrupt"):
        fetch("tiny_corrupt")
    assert not list((tmp_path / "cache" / "downloads").glob("tiny_corrupt*"))
    assert not (tmp_path / "cache" / "models" / "tiny_corrupt.safetensors").exists()


def test_unknown_name_lists_registered(served):
    with pytest.raises(EdgecnnError, match="no pretrained model 'nope'.*tiny_test"):
        fetch("nope")
