import pytest

pytest.importorskip("fastapi", reason="the [serve] extra is not installed")
from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from services.metrics import new_metrics  # noqa: E402
from services.middleware import Observe  # noqa: E402


def test_an_unhandled_error_is_a_500_without_a_stack_trace_and_is_counted():
    app = FastAPI()

    @app.get("/boom")
    def boom():
        raise KeyError("secret internal detail")

    m = new_metrics()
    app.add_middleware(Observe, metrics=m)
    r = TestClient(app).get("/boom")
    assert r.status_code == 500 and r.json() == {"error": "internal error: the server log has the details",
                                                "type": "InternalError"}
    assert "secret" not in r.text and "Traceback" not in r.text
    assert m.requests.labels("GET", "/boom", "500")._value.get() == 1
