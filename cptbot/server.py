"""The HTTP service: a thin FastAPI layer over the matcher, the conversation and tickets.

Install with the `server` extra (`pip install 'cptbot[server]'`); FastAPI, pydantic and
uvicorn are imported here only, so the rest of cptbot never needs them.

The server keeps no session: `/v1/converse` hands the conversation state to the client
and takes it back on the next turn, so any number of workers serve it. Every error is a
JSON object `{"error": code, "detail": message}`; nothing internal (tracebacks, input
echoes) ever reaches a client. Access log lines are JSON on the `cptbot.access` logger
and carry no question text unless `log_questions` is set, since tickets can hold patient
details.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import secrets
import sys
import time
from pathlib import Path
from typing import IO, Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .dialog import Conversation
from .errors import CptbotError, StateError
from .fee import Estimate
from .knowledge import KnowledgeBase, load_faq
from .matching import Matcher
from .ticket import answer_ticket
from .traffic import DeclinedLog

MAX_BODY_BYTES = 64 * 1024
"""Largest request body accepted; bigger ones get 413 before they are read in full."""

TOKEN_ENV = "CPTBOT_TOKEN"
"""Environment variable that sets the bearer token when no --token is given."""

_CONFIG_ENV = "CPTBOT_SERVE_CONFIG"
_OPEN_PATHS = frozenset({"/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})

access_log = logging.getLogger("cptbot.access")
error_log = logging.getLogger("cptbot.error")


# -- request and response bodies ------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MatchRequest(_Body):
    text: str = Field(description="The customer's question.")


class ConverseRequest(_Body):
    text: str = Field(description="What the customer said this turn.")
    state: dict[str, Any] | None = Field(
        default=None, description="The `state` of the previous reply, unchanged; absent on the first turn."
    )


class TicketRequest(_Body):
    text: str = Field(description="The whole ticket: greeting, context, questions, signature.")


class Alternative(BaseModel):
    label: str
    intent: str
    score: float
    question: str


class MatchResponse(BaseModel):
    text: str
    decision: Literal["answer", "clarify", "decline"]
    label: str | None
    intent: str | None
    score: float
    answer: str
    alternatives: list[Alternative]


class ConverseResponse(BaseModel):
    reply: str
    decision: Literal["answer", "clarify", "decline", "ask"]
    label: str | None
    expecting: Literal["doctors", "users"] | None
    estimate: Estimate | None
    state: dict[str, Any] = Field(description="Send this back unchanged as `state` with the next turn.")


class TicketAnswerBody(BaseModel):
    question: str
    decision: Literal["answer", "clarify", "decline", "ask"]
    label: str | None
    intent: str | None
    answer: str
    expecting: Literal["doctors", "users"] | None
    estimate: Estimate | None


class TicketResponse(BaseModel):
    answers: list[TicketAnswerBody]
    ignored: list[str]
    state: dict[str, Any] = Field(description="Conversation state after the estimate, to continue on /v1/converse.")
    truncated: bool


class FaqEntry(BaseModel):
    id: str
    label: str
    question: str
    answer: str


class FaqResponse(BaseModel):
    title: str
    entries: list[FaqEntry]


class Health(BaseModel):
    status: Literal["ok"]
    intents: int


class ErrorBody(BaseModel):
    error: str
    detail: str


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        400: "The conversation state is corrupt, tampered with, or from another FAQ.",
        401: "A bearer token is required and was missing or wrong.",
        413: "The request body is larger than 64 KiB.",
        422: "Malformed JSON or a missing, extra or mistyped field (named in `detail`).",
    }.items()
}


# -- the ASGI guard: size limit, token, access log, last-resort 500 -------------------------


class _TooLarge(StarletteHTTPException):
    """Raised while the body streams in, once it passes the limit (FastAPI re-raises it)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit // 1024} KiB")


def _json_bytes(status: int, error: str, detail: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    body = json.dumps({"error": error, "detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    return headers, body


class _Guard:
    """Outermost ASGI layer: rejects big bodies and missing tokens before any parsing,
    turns any unexpected exception into a generic 500, and writes the access log."""

    def __init__(self, app: Any, *, token: str | None, log_questions: bool, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.log_questions = log_questions
        self.limit = limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        started = False

        async def send_logged(message: dict) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
            await send(message)

        async def reply(code: int, error: str, detail: str) -> None:
            headers, body = _json_bytes(code, error, detail)
            await send_logged({"type": "http.response.start", "status": code, "headers": headers})
            await send_logged({"type": "http.response.body", "body": body})

        scope.setdefault("state", {})
        try:
            rejected = self._reject(scope)
            if rejected:
                await reply(*rejected)
                return
            received = 0

            async def limited_receive() -> dict:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.limit:
                        raise _TooLarge(self.limit)
                return message

            await self.app(scope, limited_receive, send_logged)
        except _TooLarge as exc:
            if not started:
                await reply(413, "too_large", exc.detail)
        except Exception:  # noqa: BLE001 - the last resort: a bug must never show a client its traceback
            error_log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await reply(500, "internal", "internal server error")
        finally:
            self._log(scope, status, start)

    def _reject(self, scope: dict) -> tuple[int, str, str] | None:
        headers = dict(scope.get("headers") or ())
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return 400, "bad_request", "the Content-Length header is not a number"
            if int(length) > self.limit:
                return 413, "too_large", f"the request body is larger than {self.limit // 1024} KiB"
        if self.token and scope.get("path", "") not in _OPEN_PATHS:
            scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
            if scheme.lower() != b"bearer" or not secrets.compare_digest(given.strip(), self.token):
                return 401, "unauthorized", "a valid bearer token is required (Authorization: Bearer TOKEN)"
        return None

    def _log(self, scope: dict, status: int, start: float) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        line: dict[str, Any] = {
            "method": scope.get("method"),
            "path": scope.get("path"),
            "status": status,
            "latency_ms": round((time.perf_counter() - start) * 1000, 2),
        }
        if self.log_questions and "question" in scope["state"]:
            line["text"] = scope["state"]["question"]
        access_log.info(json.dumps(line, ensure_ascii=False))


# -- the app ----------------------------------------------------------------------------------


def _field(loc: tuple) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) if parts else "body"


def create_app(
    kb: KnowledgeBase,
    *,
    token: str | None = None,
    log_questions: bool = False,
    log_declined: str | Path | DeclinedLog | None = None,
) -> FastAPI:
    """The ASGI app serving `kb`. `token` (if any) is required as a bearer token on /v1/*;
    `log_questions` adds question text to access log lines; `log_declined` appends the
    questions declined or clarified to that JSON-lines file (see `cptbot.traffic`)."""
    matcher = Matcher(kb)
    conversation = Conversation(kb, matcher)
    declined = DeclinedLog(log_declined) if isinstance(log_declined, (str, Path)) else log_declined

    app = FastAPI(
        title="cptbot",
        summary=f"Answers questions from the FAQ: {kb.title}",
        version="1",
        docs_url="/docs",
        redoc_url=None,
    )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        messages = []
        for error in exc.errors():
            field = _field(tuple(error.get("loc", ())))
            if error.get("type") == "json_invalid":
                messages.append(f"body: invalid JSON ({error.get('ctx', {}).get('error', 'cannot parse')})")
            elif error.get("type") == "extra_forbidden":
                messages.append(f"field '{field}': unknown field")
            else:
                messages.append(f"field '{field}': {error.get('msg', 'invalid')}")
        return JSONResponse({"error": "invalid_request", "detail": "; ".join(messages)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        code = "too_large" if exc.status_code == 413 else "http_error"
        return JSONResponse({"error": code, "detail": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(StateError)
    async def bad_state(request: Request, exc: StateError) -> JSONResponse:
        return JSONResponse(
            {"error": "invalid_state", "detail": f"the conversation state was rejected: {exc}"}, status_code=400
        )

    @app.exception_handler(CptbotError)
    async def refused(request: Request, exc: CptbotError) -> JSONResponse:
        return JSONResponse({"error": "invalid_input", "detail": str(exc)}, status_code=400)

    def remember(request: Request, text: str) -> None:
        request.state.question = text

    def learn(match: Any) -> None:
        if declined is not None and match is not None:
            try:
                declined.record(match)
            except CptbotError:
                error_log.warning("cannot write the declined-questions log %s", declined.path)

    @app.post("/v1/match", response_model=MatchResponse, responses=_ERRORS, summary="Match one question")
    def match(body: MatchRequest, request: Request) -> dict[str, Any]:
        """The same JSON object `cptbot match --json` prints."""
        remember(request, body.text)
        result = matcher.match(body.text)
        learn(result)
        return result.to_dict()

    @app.post("/v1/converse", response_model=ConverseResponse, responses=_ERRORS, summary="One turn of a conversation")
    def converse(body: ConverseRequest, request: Request) -> dict[str, Any]:
        """The fields of a `cptbot converse --jsonl` line plus `state`; the server keeps no session."""
        remember(request, body.text)
        state = conversation.start() if body.state is None else conversation.load_state(body.state)
        state, reply = conversation.respond(state, body.text)
        if reply.decision in ("decline", "clarify"):
            learn(reply.match)
        return {**reply.to_dict(), "state": conversation.dump_state(state)}

    @app.post("/v1/ticket", response_model=TicketResponse, responses=_ERRORS, summary="Answer a whole ticket")
    def ticket(body: TicketRequest, request: Request) -> dict[str, Any]:
        """One answer per distinct question, in order; the estimate from what the ticket says."""
        remember(request, body.text)
        result = answer_ticket(conversation, body.text)
        if declined is not None:
            for answer in result.answers:
                if answer.decision in ("decline", "clarify"):
                    learn(matcher.match(answer.question))
        return result.to_dict()

    @app.get("/v1/faq", response_model=FaqResponse, responses=_ERRORS, summary="The FAQ entries")
    def faq() -> dict[str, Any]:
        entries = [
            {"id": i.id, "label": i.source, "question": i.question, "answer": i.answer}
            for i in kb.intents
            if not i.smalltalk
        ]
        return {"title": kb.title, "entries": entries}

    @app.get("/healthz", response_model=Health, summary="Liveness")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "intents": len(kb.intents)}

    # Inside Starlette's ServerErrorMiddleware, outside routing: sees every request first.
    app.add_middleware(_Guard, token=token, log_questions=log_questions)
    return app


# -- running it -----------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _log_config() -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
        "loggers": {
            "cptbot.access": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "cptbot.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
        },
    }


def _app_from_env() -> Any:
    """App factory for worker processes: the FAQ path and options come from the parent."""
    config = json.loads(os.environ[_CONFIG_ENV])
    return create_app(
        load_faq(config["faq"]),
        token=os.environ.get(TOKEN_ENV) or None,
        log_questions=config["log_questions"],
        log_declined=config["log_declined"],
    )


def serve(
    kb: KnowledgeBase,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    token: str | None = None,
    *,
    log_questions: bool = False,
    log_declined: str | None = None,
    err: IO[str] | None = None,
) -> None:
    """Run the service with uvicorn until interrupted. Binds loopback unless told not to;
    a non-loopback address without a token gets a warning on `err` (stderr by default)."""
    import uvicorn

    err = err or sys.stderr
    if not is_loopback(host) and not token:
        err.write(
            f"cptbot serve: warning: listening on {host} without a token; anyone who can reach "
            f"this address can use the service (set --token or {TOKEN_ENV})\n"
        )
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": _log_config(),
        "access_log": False,  # our own JSON access log replaces uvicorn's
        "server_header": False,
        "proxy_headers": False,
    }
    if workers > 1:
        if not Path(kb.path).is_file():
            raise CptbotError(f"--workers {workers} needs a FAQ file each worker can load, not {kb.path!r}")
        os.environ[_CONFIG_ENV] = json.dumps(
            {"faq": str(Path(kb.path).resolve()), "log_questions": log_questions, "log_declined": log_declined}
        )
        if token:
            os.environ[TOKEN_ENV] = token
        uvicorn.run("cptbot.server:_app_from_env", factory=True, workers=workers, **options)
    else:
        app = create_app(kb, token=token, log_questions=log_questions, log_declined=log_declined)
        uvicorn.run(app, **options)


def main(kb: KnowledgeBase, args: Any, *, err: IO[str] | None = None) -> int:
    """`cptbot serve`: `args` has host, port, workers, token, log_questions, log_declined.
    The token falls back to $CPTBOT_TOKEN. Returns the exit code."""
    err = err or sys.stderr
    token = getattr(args, "token", None) or os.environ.get(TOKEN_ENV) or None
    workers = getattr(args, "workers", 1) or 1
    port = getattr(args, "port", 8000)
    if workers < 1 or not 0 <= port <= 65535:
        err.write(f"cptbot serve: --workers must be at least 1 and --port 0 to 65535 (got {workers}, {port})\n")
        return 2
    try:
        serve(
            kb,
            host=getattr(args, "host", "127.0.0.1") or "127.0.0.1",
            port=port,
            workers=workers,
            token=token,
            log_questions=bool(getattr(args, "log_questions", False)),
            log_declined=getattr(args, "log_declined", None),
            err=err,
        )
    except CptbotError as exc:
        err.write(f"cptbot serve: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 0
    return 0
