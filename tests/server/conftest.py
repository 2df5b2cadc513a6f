"""Fixtures: the API server (server_process.Server) and the official clients pointed at it."""
from __future__ import annotations

import pytest

from .server_process import STARTER_ID, Server, free_port  # noqa: F401 - re-exported


@pytest.fixture(scope="module")
def server(tmp_path_factory, starter_model):
    srv = Server(tmp_path_factory.mktemp("serve"), "--ctx", "512", "--ttl", "0")
    yield srv
    srv.stop()


@pytest.fixture
def openai_client(server):
    import openai
    return openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=120)


@pytest.fixture
def anthropic_client(server):
    import anthropic
    return anthropic.Anthropic(base_url=server.root, api_key="unused", max_retries=0,
                               timeout=120)
