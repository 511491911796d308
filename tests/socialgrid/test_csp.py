"""Content-Security-Policy: pages load only from this server; worker scripts (where kernels
run) may load and fetch only from this server too."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from socialgrid import csp

pytestmark = pytest.mark.django_db

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
# A <script> without src (JSON data blocks are not run), or an on...="" attribute.
INLINE_SCRIPT = re.compile(r'<script(?![^>]*\bsrc=)(?![^>]*type="application/json")[^>]*>')
EVENT_HANDLER = re.compile(r'\son[a-z]+="')


def policy(response) -> dict[str, list[str]]:
    return csp.parse(response["Content-Security-Policy"])


@pytest.mark.parametrize("path", ["/", "/leaderboards/", "/accounts/login/"])
def test_pages_allow_scripts_styles_and_connections_only_from_this_server(client, path):
    response = client.get(path)
    assert response.status_code == 200
    p = policy(response)
    assert p["default-src"] == ["'self'"]
    assert p["script-src"] == ["'self'", "'wasm-unsafe-eval'"]
    assert "'unsafe-inline'" not in p["script-src"]
    assert "'unsafe-eval'" not in p["script-src"]
    assert p["connect-src"] == ["'self'"]
    assert p["worker-src"] == ["'self'"]
    assert p["object-src"] == ["'none'"]
    assert p["frame-ancestors"] == ["'none'"]


def test_templates_hold_no_inline_script_the_policy_would_block():
    inline = [
        str(t.relative_to(TEMPLATES))
        for t in TEMPLATES.rglob("*.html")
        if INLINE_SCRIPT.search(t.read_text()) or EVENT_HANDLER.search(t.read_text())
    ]
    assert inline == []


def test_worker_scripts_carry_the_worker_policy(client):
    response = client.get("/static/socialgrid/worker/runner.js")
    assert response.status_code == 200
    p = policy(response)
    assert p["default-src"] == ["'none'"]
    # Kernels are imported from blob: URLs after their hash is checked, and may compile
    # WebAssembly; they may fetch only from this server.
    assert p["script-src"] == ["'self'", "blob:", "'wasm-unsafe-eval'"]
    assert p["connect-src"] == ["'self'"]


def test_page_scripts_are_not_given_the_worker_policy(client):
    response = client.get("/static/socialgrid/volunteer.js")
    assert response.status_code == 200
    assert "Content-Security-Policy" not in response


def test_a_view_s_own_directive_wins_and_the_rest_of_the_policy_stays():
    merged = csp.parse(csp.page_policy("frame-ancestors https://blog.example.org"))
    assert merged["frame-ancestors"] == ["https://blog.example.org"]
    assert merged["script-src"] == ["'self'", "'wasm-unsafe-eval'"]
