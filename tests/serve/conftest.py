"""conftest.py (tests/serve) — a `boxlite serve` per test module on 127.0.0.1, sharing the
session's runtime home (so the default image is prepared once)."""
import pytest

from serve_helpers import Api, Server, serve_env


@pytest.fixture(scope="module")
def server(box_env, tmp_path_factory):
    s = Server(serve_env(box_env), tmp_path_factory.mktemp("serve"))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def api(server):
    return Api(server.port)
