"""serve under hostile input and load: every bad request gets a JSON error, the server goes on.

All on 127.0.0.1 with an ephemeral port. Requests are written on raw sockets so that headers
can be wrong in every way a client can get them wrong.
"""

import io
import json
import os
import socket
import struct
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from edgecnn.apps.serve import make_server
from edgecnn.apps.serve_http import Limits, ServeError, exposure_warning
from edgecnn.core import reference
from edgecnn.core.preprocess import load_image, preprocess
from testutil import tiny_cnn, write_image


def start(limits=None):
    g = tiny_cnn(classes=1000)
    httpd = make_server(g, "127.0.0.1", 0, limits=limits)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return g, httpd


@pytest.fixture
def server():
    g, httpd = start(Limits(max_active=4, max_waiting=8, read_timeout=1.0))
    yield g, httpd
    httpd.shutdown()
    httpd.server_close()


def raw(port, data: bytes, close_write=True, timeout=10.0):
    """Send raw bytes, read the whole answer: (status, parsed JSON body or raw bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        if close_write:
            s.shutdown(socket.SHUT_WR)
        return parse(read_all(s))


def read_all(s) -> bytes:
    chunks = []
    while chunk := s.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def parse(answer: bytes):
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    ctype = next((line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-type:")), b"")
    return status, (json.loads(body) if ctype == b"application/json" else body)


def post(port, body: bytes, length=None, extra=b"", **kw):
    length = str(len(body)).encode() if length is None else length
    head = b"POST /classify HTTP/1.1\r\nHost: x\r\n" + extra
    if length is not False:
        head += b"Content-Length: " + length + b"\r\n"
    return raw(port, head + b"\r\n" + body, **kw)


def png_bytes(size=(40, 30), seed=0) -> bytes:
    buf = io.BytesIO()
    write_image(buf, size=size, seed=seed, fmt="PNG")
    return buf.getvalue()


def png_bomb(width=20000, height=20000) -> bytes:
    """A valid PNG of ``width``×``height`` grey pixels, all zero: ~ hundreds of KB compressed.

    Rows compress to almost nothing, so the file is small and the decoded image is huge.
    """
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))
    raw_rows = zlib.compressobj(9)
    row = b"\0" * (width + 1)
    idat = b"".join(raw_rows.compress(row) for _ in range(height)) + raw_rows.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


def expected_top5(g, data: bytes):
    p = reference.predict(g, preprocess(load_image(io.BytesIO(data)), g.preprocessing,
                                        (16, 16))[None])[0]
    return [int(i) for i in np.argsort(-p, kind="stable")[:5]]


def assert_alive(g, port):
    data = png_bytes(seed=7)
    status, out = post(port, data)
    assert status == 200, out
    assert [t["index"] for t in out["top"]] == expected_top5(g, data)


BAD_REQUESTS = [
    # (what, request bytes, status, words in the error)
    ("no content-length", b"POST /classify HTTP/1.1\r\n\r\nabc", 411, "Content-Length"),
    ("non-numeric length", b"POST /classify HTTP/1.1\r\nContent-Length: abc\r\n\r\nabc", 400,
     "not a non-negative integer"),
    ("negative length", b"POST /classify HTTP/1.1\r\nContent-Length: -5\r\n\r\nabc", 400,
     "not a non-negative integer"),
    ("huge length", b"POST /classify HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
     413, "smaller image"),
    ("two lengths", b"POST /classify HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n"
     b"abc", 400, "exactly one"),
    ("empty body", b"POST /classify HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 400, "empty body"),
    ("chunked", b"POST /classify HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"
     b"\r\n", 411, "Content-Length"),
    ("truncated upload", b"POST /classify HTTP/1.1\r\nContent-Length: 5000\r\n\r\n\x89PNG\r\n",
     400, "truncated"),
    ("not an image", b"POST /classify HTTP/1.1\r\nContent-Length: 12\r\n\r\nnot an image", 400,
     "cannot decode"),
    ("wrong method", b"DELETE /classify HTTP/1.1\r\n\r\n", 405, "POST"),
    ("GET on classify", b"GET /classify HTTP/1.1\r\n\r\n", 405, "POST"),
    ("wrong path", b"POST /elsewhere HTTP/1.1\r\nContent-Length: 1\r\n\r\nx", 404,
     "POST /classify"),
    ("garbage request line", b"\x00\xff garbage\r\n\r\n", 400, "request"),
    ("bad version", b"GET / HTTP/9.9\r\n\r\n", 505, "HTTP"),
    ("long request line", b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414, "too long"),
]


@pytest.mark.parametrize("what,request_bytes,status,words", BAD_REQUESTS,
                         ids=[r[0] for r in BAD_REQUESTS])
def test_bad_request_gets_json_error_and_server_goes_on(server, what, request_bytes, status,
                                                        words):
    g, httpd = server
    port = httpd.server_address[1]
    got, out = raw(port, request_bytes)
    assert got == status, out
    assert words.lower() in out["error"].lower()
    assert_alive(g, port)


def test_truncated_image_file_is_400_not_a_crash(server):
    g, httpd = server
    data = png_bytes(size=(64, 64))
    status, out = post(httpd.server_address[1], data[: len(data) // 2])
    assert status == 400 and "cannot decode" in out["error"]
    assert_alive(g, httpd.server_address[1])


@pytest.mark.parametrize("w,h", [(20000, 20000), (6000, 5000)])
def test_decompression_bomb_is_413_before_decoding(server, w, h):
    """400 M pixels (past Pillow's own limit) and 30 M (past serve's 24 M, under Pillow's)."""
    g, httpd = server
    bomb = png_bomb(w, h)
    assert len(bomb) < 1 << 20  # a small upload that declares a huge image
    status, out = post(httpd.server_address[1], bomb)
    assert status == 413 and "Mpixels" in out["error"] and "smaller image" in out["error"], out
    assert_alive(g, httpd.server_address[1])


def test_slow_client_gets_408_and_does_not_hold_the_server(server):
    g, httpd = server
    port = httpd.server_address[1]
    # headers promise 1000 bytes, then the client stalls past the 1 s read timeout
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /classify HTTP/1.1\r\nContent-Length: 1000\r\n\r\nabc")
        status, out = parse(read_all(s))
    assert status == 408 and "timed out" in out["error"]
    # stalls in the middle of the headers too
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /classify HTTP/1.1\r\nContent-Le")
        status, out = parse(read_all(s))
    assert status == 408
    assert_alive(g, port)


def stalled_uploads(port: int, n: int, settle: float) -> list[socket.socket]:
    """n uploads that promise 100 bytes and send none: each holds a server thread until its
    read timeout; ``settle`` seconds for the server to take them up."""
    stalled = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(n)]
    for s in stalled:
        s.sendall(b"POST /classify HTTP/1.1\r\nContent-Length: 100\r\n\r\n")
    time.sleep(settle)
    return stalled


def test_past_the_concurrency_limit_requests_get_503_then_service_resumes():
    g, httpd = start(Limits(max_active=2, max_waiting=2, read_timeout=2.0))
    port = httpd.server_address[1]
    try:
        # two stalled uploads hold both active slots until their read timeout
        stalled = stalled_uploads(port, 2, settle=0.3)
        status, out = post(port, png_bytes())
        assert status == 503 and "busy" in out["error"]
        for s in stalled:
            assert parse(read_all(s))[0] == 408
            s.close()
        assert_alive(g, port)
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_past_both_limits_a_connection_waits_its_turn_and_is_answered():
    """Active and waiting threads all held: the next client waits in the listen queue (the
    server accepts nothing more meanwhile) and is answered once a thread comes free."""
    g, httpd = start(Limits(max_active=1, max_waiting=1, read_timeout=2.0))
    port = httpd.server_address[1]
    stalled = stalled_uploads(port, 2, settle=0.5)
    try:
        t0 = time.perf_counter()
        status, out = post(port, png_bytes(), timeout=30)
        waited = time.perf_counter() - t0
        assert status == 200, out
        assert [t["index"] for t in out["top"]] == expected_top5(g, png_bytes())
        assert waited > 0.5, waited  # it was not answered before a stalled upload timed out
        assert sorted(parse(read_all(s))[0] for s in stalled) == [408, 408]
        assert httpd.dropped == 0
    finally:
        for s in stalled:
            s.close()
        httpd.shutdown()
        httpd.server_close()


def test_port_in_use_is_one_clear_error():
    g, httpd = start()
    try:
        with pytest.raises(ServeError, match="in use.*--port"):
            make_server(g, "127.0.0.1", httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_binding_beyond_loopback_warns():
    assert exposure_warning("127.0.0.1") is None
    assert exposure_warning("::1") is None and exposure_warning("localhost") is None
    assert "other machines" in exposure_warning("0.0.0.0")
    assert "other machines" in exposure_warning("192.168.1.20")


def rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return None


def test_load_16_clients_every_request_answered_memory_flat():
    """16 concurrent clients, 320 requests: each answered with the reference's top-5."""
    clients, per_client = 16, 20
    # room above 16: a client may reconnect before the last answer's thread has ended
    g, httpd = start(Limits(max_active=clients + 8, max_waiting=16, read_timeout=10.0))
    port = httpd.server_address[1]
    images = [png_bytes(size=(48, 40), seed=s) for s in range(8)]
    want = [expected_top5(g, d) for d in images]

    def client(c):
        got = []
        for i in range(per_client):
            k = (c + i) % len(images)
            status, out = post(port, images[k], timeout=60)
            got.append((k, status, out))
        return got

    try:
        for k, d in enumerate(images):  # warm up: first-use allocations are not growth
            assert post(port, d)[1]["top"][0]["index"] == want[k][0]
        before = rss_bytes()
        t0 = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            results = [r for rs in pool.map(client, range(clients)) for r in rs]
        elapsed = time.perf_counter() - t0
        after = rss_bytes()
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert len(results) == clients * per_client
    for k, status, out in results:
        assert status == 200, out
        assert [t["index"] for t in out["top"]] == want[k]
    assert httpd.dropped == 0
    assert elapsed < 300  # bounded: a hang fails here rather than stalling the suite
    if before is not None:
        assert after - before < 40 << 20, f"RSS grew {(after - before) >> 20} MB"


def test_cli_port_in_use_is_one_line_and_status_2(tmp_path, capsys):
    from edgecnn.cli.main import main
    from edgecnn.formats.modelfile import save

    g, httpd = start()
    try:
        model = save(g, tmp_path / "m.safetensors")
        assert main(["serve", str(model), "--port", str(httpd.server_address[1])]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "in use" in err[0] and "--port" in err[0], err
    finally:
        httpd.shutdown()
        httpd.server_close()
