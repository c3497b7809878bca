"""A first run with no network fails fast: one quick probe of the Hub, then one line, never the library's retries.

Every address here is on the loopback interface; nothing leaves the machine.
"""

from __future__ import annotations

import http.server
import socket
import threading

import huggingface_hub
import pytest
from huggingface_hub import constants

from fastvid_cli.errors import ModelError
from fastvid_cli.models import hub

NOT_CACHED = "fastvid-test/not-cached"
CLOSED = "http://127.0.0.1:1"  # nothing listens on port 1: the connection is refused at once


@pytest.fixture()
def hub_env(monkeypatch, tmp_path):
    """An empty Hub cache, no offline mode, a fresh probe, and counters on every network entry point.

    ``calls["probe"]`` counts the probe's requests; ``calls["download"]`` counts huggingface_hub calls
    that may go to the network (``local_files_only`` not set).
    """
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_ETAG_TIMEOUT", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("FASTVID_CACHE", str(tmp_path / "fastvid"))
    hub._probe.cache_clear()
    calls = {"probe": 0, "download": 0}
    head = hub._head

    def counted_head(endpoint, timeout):
        calls["probe"] += 1
        return head(endpoint, timeout)

    monkeypatch.setattr(hub, "_head", counted_head)
    for name in ("snapshot_download", "hf_hub_download"):
        real = getattr(huggingface_hub, name)

        def counted(*args, _real=real, **kwargs):
            if not kwargs.get("local_files_only"):
                calls["download"] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(huggingface_hub, name, counted)

    class NoFileSystem:
        def __init__(self, *args, **kwargs):
            calls["download"] += 1
            raise AssertionError("HfFileSystem must not be reached")

    monkeypatch.setattr(huggingface_hub, "HfFileSystem", NoFileSystem)
    yield calls
    hub._probe.cache_clear()


@pytest.fixture()
def silent_server():
    """A loopback port that accepts connections and never answers (a blackholed network, as the client sees it).

    Each connection is dropped after 20 s, so code that waits without a timeout fails instead of hanging.
    """
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)

    def hold():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:  # closed at teardown
                return
            drop = threading.Timer(20, conn.close)
            drop.daemon = True
            drop.start()

    threading.Thread(target=hold, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()


def test_closed_port_model_one_line_without_download(cli_line, monkeypatch, hub_env, sample_video):
    monkeypatch.setattr(constants, "ENDPOINT", CLOSED)
    status, line = cli_line("ask", sample_video, "q", "--model", NOT_CACHED, "--device", "cpu")
    assert status == 2
    assert line.startswith(f"fastvid: error: model {NOT_CACHED} is not in the local cache and the Hub cannot be reached")
    assert CLOSED in line and "ConnectError" in line and "local checkpoint folder as the --model" in line
    assert hub_env == {"probe": 1, "download": 0}


def test_silent_network_gives_up_after_the_probe_timeout(cli_line, monkeypatch, hub_env, silent_server, sample_video):
    monkeypatch.setattr(constants, "ENDPOINT", silent_server)
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "0.3")
    status, line = cli_line("ask", sample_video, "q", "--model", NOT_CACHED, "--device", "cpu")
    assert status == 2 and "not in the local cache" in line
    assert f"no answer from {silent_server} within 0.3 s" in line
    assert hub_env == {"probe": 1, "download": 0}


def test_a_lookup_that_ignores_timeouts_is_given_up(monkeypatch, hub_env):
    """A name lookup that hangs is outside the HTTP client's timeouts; the probe still gives up in time."""
    release = threading.Event()
    monkeypatch.setattr(hub, "_head", lambda endpoint, timeout: release.wait(60))
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "0.2")
    try:
        assert hub.hub_unreachable() == "no answer from http://127.0.0.1:9 within 0.2 s"
    finally:
        release.set()


def test_probe_runs_once_per_process(monkeypatch, hub_env):
    """The model, its config and the SigLIP head all miss the cache: one probe, three clear errors."""
    from fastvid_cli.models import resolve_model
    from fastvid_cli.models.geometry import model_geometry
    from fastvid_cli.models.siglip_head import load_siglip_head

    monkeypatch.setattr(constants, "ENDPOINT", CLOSED)
    with pytest.raises(ModelError, match="not in the local cache and the Hub cannot be reached"):
        resolve_model(NOT_CACHED)
    with pytest.raises(ModelError, match=f"no geometry for {NOT_CACHED}: its config.json is not cached and the Hub"):
        model_geometry(NOT_CACHED)
    with pytest.raises(ModelError, match="cannot fetch the SigLIP head from google/siglip-so400m-patch14-384 .*127.0.0.1:1"):
        load_siglip_head()
    assert hub_env == {"probe": 1, "download": 0}


def test_flops_of_an_uncached_repo_is_one_line(cli_line, monkeypatch, hub_env):
    monkeypatch.setattr(constants, "ENDPOINT", CLOSED)
    status, line = cli_line("flops", "--model", NOT_CACHED)
    assert status == 2 and f"no geometry for {NOT_CACHED}" in line and CLOSED in line
    assert hub_env == {"probe": 1, "download": 0}


def test_cached_model_never_touches_the_network(monkeypatch, hub_env, tmp_path):
    from fastvid_cli.models import resolve_model

    cached = tmp_path / "snapshot"
    cached.mkdir()
    monkeypatch.setattr(constants, "ENDPOINT", CLOSED)
    monkeypatch.setattr(
        huggingface_hub,
        "snapshot_download",
        lambda repo_id, local_files_only=False, **kwargs: str(cached) if local_files_only else pytest.fail(),
    )
    assert resolve_model(NOT_CACHED).path == cached
    assert hub_env["probe"] == 0


class _FakeHub(http.server.BaseHTTPRequestHandler):
    """Answers the probe, and refuses every repository with the Hub's error code of the server's ``code``."""

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        status, code = self.server.refusal
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize(
    "refusal,message",
    [
        ((404, "RepoNotFound"), f"unknown model '{NOT_CACHED}': no such repository on the Hugging Face Hub"),
        ((403, "GatedRepo"), f"{NOT_CACHED} is gated: accept its license"),
    ],
    ids=["unknown-repo", "gated-repo"],
)
def test_reachable_hub_keeps_the_library_errors(cli_line, monkeypatch, hub_env, sample_video, refusal, message):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeHub)
    server.refusal = refusal
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        status, line = cli_line("ask", sample_video, "q", "--model", NOT_CACHED, "--device", "cpu")
    finally:
        server.shutdown()
        server.server_close()
    assert status == 2 and message in line
    assert hub_env == {"probe": 1, "download": 1}
