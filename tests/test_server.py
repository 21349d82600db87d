"""The HTTP service, in-process through FastAPI's test client, plus one real server."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

with warnings.catch_warnings():
    # Starlette 1.x asks for the `httpx2` fork in its test client; plain httpx still works.
    warnings.filterwarnings("ignore", message=".*install `httpx2`")
    from fastapi.testclient import TestClient

from cptbot import load_faq
from cptbot.server import MAX_BODY_BYTES, create_app, is_loopback

KB = load_faq()
ROOT = Path(__file__).resolve().parent.parent
SALES = "who sells the cpt license"
NO_CODES = "do i need a license if we don't use cpt codes"


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(KB)) as c:
        yield c


def assert_clean_error(response, status: int, *phrases: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"}
    for phrase in phrases:
        assert phrase in body["detail"]
    for leak in ("Traceback", 'File "', "site-packages", "pydantic", "Exception"):
        assert leak not in response.text
    return body


# -- the endpoints ----------------------------------------------------------------------------


def test_match_returns_the_same_object_as_cptbot_match(client):
    from cptbot import Matcher

    response = client.post("/v1/match", json={"text": SALES})
    assert response.status_code == 200
    assert response.json() == Matcher(KB).match(SALES).to_dict()
    assert response.json()["intent"] == "who_sells_license"


def test_faq_lists_the_entries_without_small_talk(client):
    body = client.get("/v1/faq").json()
    ids = [e["id"] for e in body["entries"]]
    assert "no_codes_no_license" in ids and "greeting" not in ids
    entry = body["entries"][ids.index("no_codes_no_license")]
    assert set(entry) == {"id", "label", "question", "answer"}
    assert entry["label"] == "6.4"


def test_healthz_and_openapi_document(client):
    assert client.get("/healthz").json() == {"status": "ok", "intents": len(KB.intents)}
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/match", "/v1/converse", "/v1/ticket", "/v1/faq", "/healthz"} <= set(paths)


def test_converse_round_trip_carries_state_across_two_requests(client):
    first = client.post("/v1/converse", json={"text": "what will my practice pay for its cpt license?"})
    assert first.status_code == 200
    body = first.json()
    assert body["decision"] == "ask" and body["expecting"] == "doctors"
    assert set(body) == {"reply", "decision", "label", "expecting", "estimate", "state"}
    saved = json.loads(json.dumps(body["state"]))  # as a helpdesk stores it on the ticket
    second = client.post("/v1/converse", json={"text": "2", "state": saved}).json()
    assert second["expecting"] == "users"
    third = client.post("/v1/converse", json={"text": "5", "state": second["state"]}).json()
    assert third["estimate"]["doctors"] == 2 and third["estimate"]["users"] == 5
    assert third["estimate"]["annual_fee"] == 5 * KB.fee.rate_per_user


def test_converse_without_state_starts_afresh(client):
    body = client.post("/v1/converse", json={"text": NO_CODES}).json()
    assert body["label"] == "6.4" and body["decision"] == "answer"


@pytest.mark.parametrize(
    "state",
    [
        {
            "version": 1,
            "mode": "estimate",
            "doctors": 2,
            "users": 1,
            "use_default": False,
            "expecting": None,
            "proposal": None,
            "strikes": 0,
            "options": [],
        },
        {"version": 99},
        {"mode": "estimate", "admin": True},
        {
            "version": 1,
            "mode": "idle",
            "doctors": None,
            "users": None,
            "use_default": False,
            "expecting": None,
            "proposal": None,
            "strikes": 0,
            "options": ["drop_table"],
        },
    ],
)
def test_tampered_state_gets_400_with_a_clear_message(client, state):
    response = client.post("/v1/converse", json={"text": "5", "state": state})
    body = assert_clean_error(response, 400, "conversation state was rejected")
    assert body["error"] == "invalid_state"


def test_state_that_is_not_an_object_gets_422_naming_state(client):
    assert_clean_error(client.post("/v1/converse", json={"text": "5", "state": [1]}), 422, "field 'state'")


def test_ticket_answers_each_question_once_with_the_estimate(client):
    ticket = (
        "Hi team,\n\nWe are a two doctor office. How much will this cost? Who sells the CPT license? "
        "Who do we buy the license from?\n\nThanks,\nJane Doe"
    )
    body = client.post("/v1/ticket", json={"text": ticket}).json()
    assert [a["intent"] for a in body["answers"]] == ["fee_estimate", "who_sells_license"]
    assert body["answers"][0]["estimate"]["doctors"] == 2
    assert "Jane Doe" in body["ignored"]


# -- refusals -----------------------------------------------------------------------------------


def test_body_over_64_kib_by_content_length_gets_413(client):
    big = json.dumps({"text": "a" * MAX_BODY_BYTES})
    response = client.post("/v1/match", content=big, headers={"content-type": "application/json"})
    assert_clean_error(response, 413, "64 KiB")


def test_streamed_body_over_64_kib_without_content_length_gets_413(client):
    def chunks():
        yield b'{"text": "'
        for _ in range(80):
            yield b"a" * 1024
        yield b'"}'

    response = client.post("/v1/match", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert_clean_error(response, 413, "64 KiB")


@pytest.mark.parametrize(
    ("body", "phrase"),
    [
        ({}, "field 'text'"),
        ({"text": 42}, "field 'text'"),
        ({"text": None}, "field 'text'"),
        ({"text": "hi", "txt": "x"}, "field 'txt'"),
        ([1, 2], "body"),
    ],
)
def test_malformed_fields_get_422_naming_the_field(client, body, phrase):
    assert_clean_error(client.post("/v1/match", json=body), 422, phrase)


def test_malformed_json_gets_422_naming_the_body(client):
    response = client.post("/v1/match", content=b'{"text": "who sells', headers={"content-type": "application/json"})
    assert_clean_error(response, 422, "invalid JSON")


def test_unknown_paths_and_methods_get_clean_errors(client):
    assert_clean_error(client.get("/v1/nope"), 404)
    assert_clean_error(client.get("/v1/match"), 405)


def test_token_is_required_when_set():
    with TestClient(create_app(KB, token="s3cret")) as c:
        assert_clean_error(c.post("/v1/match", json={"text": SALES}), 401, "bearer token")
        wrong = c.post("/v1/match", json={"text": SALES}, headers={"Authorization": "Bearer nope"})
        assert_clean_error(wrong, 401)
        assert wrong.headers["www-authenticate"] == "Bearer"
        ok = c.post("/v1/match", json={"text": SALES}, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert c.get("/healthz").status_code == 200  # load balancers probe without a token


def test_an_unexpected_bug_gets_a_generic_500_without_detail(monkeypatch):
    from cptbot import matching

    def broken(self, text, *, limit=3):
        raise RuntimeError("secret internal detail /etc/passwd")

    monkeypatch.setattr(matching.Matcher, "match", broken)
    with TestClient(create_app(KB), raise_server_exceptions=False) as c:
        response = c.post("/v1/match", json={"text": SALES})
    body = assert_clean_error(response, 500)
    assert "secret" not in response.text and body["detail"] == "internal server error"


# -- logging -------------------------------------------------------------------------------


def test_access_log_is_json_without_question_text_unless_asked(caplog):
    with caplog.at_level(logging.INFO, logger="cptbot.access"), TestClient(create_app(KB)) as c:
        c.post("/v1/match", json={"text": "my patient John Smith asks who sells the cpt license"})
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "cptbot.access"]
    assert lines[-1]["method"] == "POST" and lines[-1]["path"] == "/v1/match" and lines[-1]["status"] == 200
    assert isinstance(lines[-1]["latency_ms"], float)
    assert "John Smith" not in caplog.text

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="cptbot.access"), TestClient(create_app(KB, log_questions=True)) as c:
        c.post("/v1/match", json={"text": SALES})
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "cptbot.access"]
    assert lines[-1]["text"] == SALES


def test_declined_questions_are_logged_when_asked(tmp_path):
    from cptbot.traffic import read_log

    path = tmp_path / "declined.jsonl"
    with TestClient(create_app(KB, log_declined=path)) as c:
        c.post("/v1/match", json={"text": "what is the weather in paris tomorrow"})
        c.post("/v1/match", json={"text": SALES})
    entries, _ = read_log(path)
    assert [e.text for e in entries] == ["what is the weather in paris tomorrow"]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.0.0.5", False),
    ],
)
def test_loopback_detection(host, loopback):
    assert is_loopback(host) is loopback


def test_serving_on_a_public_address_without_token_warns(monkeypatch):
    import io

    import uvicorn

    from cptbot import server

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: calls.append(k))
    err = io.StringIO()
    server.serve(KB, host="0.0.0.0", port=8123, err=err)
    assert "warning" in err.getvalue() and "without a token" in err.getvalue()
    assert calls and calls[0]["host"] == "0.0.0.0"
    err = io.StringIO()
    server.serve(KB, host="0.0.0.0", port=8123, token="t", err=err)
    server.serve(KB, port=8123, err=err)
    assert err.getvalue() == ""


# -- one real server ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_real_server_answers_over_http_on_loopback(tmp_path):
    port = _free_port()
    code = (
        "import sys; from cptbot import load_faq; from cptbot.server import serve; "
        f"serve(load_faq(), host='127.0.0.1', port={port}, token='t0k')"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as r:
                    assert json.load(r)["status"] == "ok"
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        request = urllib.request.Request(
            f"{base}/v1/match",
            data=json.dumps({"text": SALES}).encode(),
            headers={"Content-Type": "application/json", "Authorization": "Bearer t0k"},
        )
        with urllib.request.urlopen(request, timeout=10) as r:
            assert json.load(r)["intent"] == "who_sells_license"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(f"{base}/v1/faq"), timeout=10)
        assert refused.value.code == 401
        refused.value.close()
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    log = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    assert {"method": "POST", "path": "/v1/match", "status": 200} in [
        {k: line[k] for k in ("method", "path", "status")} for line in log
    ]
    assert SALES not in err.decode()
