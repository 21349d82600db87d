"""Property-based fuzzing of the HTTP API from its own OpenAPI document: no 5xx, ever."""

from __future__ import annotations

import warnings

import pytest

pytest.importorskip("fastapi")
schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from cptbot import load_faq
from cptbot.server import create_app

with warnings.catch_warnings():
    # Starlette 1.x asks for the `httpx2` fork in its test client; plain httpx still works.
    warnings.filterwarnings("ignore", message=".*install `httpx2`")
    from fastapi.testclient import TestClient

_APP = create_app(load_faq())
schema = schemathesis.openapi.from_asgi("/openapi.json", _APP)
# Valid bodies and deliberately invalid ones (wrong types, missing and extra fields).
schema.config.generation.update(modes=list(GenerationMode))


@schema.parametrize()
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_the_api_fail_with_5xx(case):
    response = case.call()
    case.validate_response(response, checks=(not_a_server_error,))
    assert response.status_code < 500
    assert "Traceback" not in response.text


# JSON has no NaN or Infinity: the test client could not send them.
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)
_VALID_STATE = {
    "version": 1,
    "mode": "estimate",
    "doctors": 2,
    "users": None,
    "use_default": False,
    "expecting": "users",
    "proposal": None,
    "strikes": 0,
    "options": [],
}


@settings(max_examples=50, deadline=None)
@given(field=st.sampled_from(sorted(_VALID_STATE)), value=_JSON, text=st.text(max_size=50))
def test_a_state_with_any_field_tampered_gets_200_or_400_never_5xx(field, value, text):
    with TestClient(_APP) as client:
        response = client.post("/v1/converse", json={"text": text, "state": {**_VALID_STATE, field: value}})
    assert response.status_code in (200, 400), response.text
