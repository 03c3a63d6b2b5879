"""Server logs carry no personal data (D10): PostgreSQL's "Failing row contains (…)" and key
values, and SQLAlchemy's bound parameters, are cut out of messages and tracebacks by the app's
logging setup, on its own handlers and on handlers added later (uvicorn's)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from gridgov.logging import REDACTED, JsonFormatter, configure_logging, redact

HEAD, PHONE, ID_NUMBER = "欧阳秘密", "13988887777", "11010519491231002X"
# A NOT NULL violation whose failing row holds a name, a phone and an ID number.
FAILING_INSERT = text(
    "INSERT INTO households (county_code, village_id, head_name, phone, id_number, geom) "
    "VALUES ('439902', (SELECT min(id) FROM admin_units), :head, :phone, :id_number, NULL)"
)
PARAMS = {"head": HEAD, "phone": PHONE, "id_number": ID_NUMBER}


def assert_clean(output: str) -> None:
    for value in (HEAD, PHONE, ID_NUMBER):
        assert value not in output, output


def failing_insert(engine) -> DBAPIError:
    with engine.connect() as c, pytest.raises(DBAPIError) as caught:
        c.execute(FAILING_INSERT, PARAMS)
    return caught.value


@pytest.fixture
def exposing_engine(db_url: str) -> Iterator:
    """An engine that puts parameters into its errors (the app's own hides them)."""
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


def test_database_errors_hold_personal_data_without_redaction(exposing_engine):
    message = str(failing_insert(exposing_engine))
    assert "Failing row contains" in message and PHONE in message and "[parameters:" in message
    clean = redact(message)
    assert_clean(clean)
    assert "Failing row contains" not in clean and REDACTED in clean
    assert "violates not-null constraint" in clean  # what went wrong is still there
    assert "[SQL: INSERT INTO households" in clean
    key = 'duplicate key value violates unique constraint "u"\nDETAIL:  Key (phone)=(13988887777).'
    assert redact(key) == f'duplicate key value violates unique constraint "u"\nDETAIL:  {REDACTED}'


def test_app_engine_hides_parameters(engine):
    message = str(failing_insert(engine))
    assert "[parameters:" not in message and HEAD not in redact(message)


@pytest.mark.parametrize("as_json", [True, False])
def test_tracebacks_on_every_handler_are_redacted(exposing_engine, as_json):
    configure_logging("INFO", as_json)
    # A handler added after the app's setup, as uvicorn adds its own.
    late = io.StringIO()
    handler = logging.StreamHandler(late)
    handler.setFormatter(JsonFormatter() if as_json else logging.Formatter("%(message)s"))
    uvicorn = logging.getLogger("uvicorn.error")
    uvicorn.addHandler(handler)
    try:
        error = failing_insert(exposing_engine)
        try:
            raise RuntimeError("write failed") from error
        except RuntimeError:
            uvicorn.exception("Exception in ASGI application")
        uvicorn.error("insert failed: %s", error)
    finally:
        uvicorn.removeHandler(handler)
    output = late.getvalue()
    assert "Exception in ASGI application" in output and "Traceback" in output
    assert "NotNullViolation" in output  # the trace keeps its shape
    assert_clean(output)
    if as_json:
        assert all(json.loads(line) for line in output.splitlines() if line.startswith("{"))


def test_unexpected_database_error_logged_without_personal_data(exposing_engine):
    from gridgov.app import create_app

    app = create_app()

    @app.get("/boom-db")
    def boom() -> None:
        with exposing_engine.connect() as c:
            c.execute(FAILING_INSERT, PARAMS)

    logged = io.StringIO()
    handler = logging.StreamHandler(logged)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("gridgov.http")
    logger.addHandler(handler)
    try:
        with TestClient(app, raise_server_exceptions=False) as c:
            r = c.get("/boom-db")
    finally:
        logger.removeHandler(handler)
    assert r.status_code == 500
    assert_clean(r.text)
    (record,) = [json.loads(line) for line in logged.getvalue().splitlines() if '"exc"' in line]
    assert "NotNullViolation" in record["exc"] and "Failing row contains" not in record["exc"]
    assert_clean(record["exc"])
