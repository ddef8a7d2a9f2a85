"""VLM client against a small OpenAI-compatible server on loopback (http.server in a thread)."""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from nav_policy.instruct.errors import InstructionError
from nav_policy.instruct.landmarks import LandmarkMap, load_landmarks
from nav_policy.instruct.vlm import (
    VlmClient,
    VlmConfig,
    build_request,
    encode_jpeg_data_url,
)
from nav_policy.paths import config_path

SECRET = "sk-test-never-show-me-0123456789"
KEY_ENV = "NAV_POLICY_TEST_VLM_KEY"
GOOD_PLAN = {"steps": [
    {"action": "go_past", "target": "couch", "direction": None, "distance_m": None, "angle_deg": None, "duration_s": None},
    {"action": "go_to", "target": "refrigerator", "direction": None, "distance_m": None, "angle_deg": None, "duration_s": None},
]}  # fmt: skip


def _chat_reply(content: Any) -> dict[str, Any]:
    return {
        "id": "x",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": content},
            }
        ],
    }


class _Handler(BaseHTTPRequestHandler):
    """Replies as server.mode says; records every request on server.requests."""

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        srv = self.server
        srv.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})  # type: ignore[attr-defined]
        mode = srv.modes.pop(0) if len(srv.modes) > 1 else srv.modes[0]  # type: ignore[attr-defined]
        if mode == "sleep":
            time.sleep(1.5)
            return self._send(200, _chat_reply(json.dumps(GOOD_PLAN)))
        if mode == "500":
            return self._send(500, {"error": "overloaded"})
        if mode == "401":  # echoes the credential back, as a careless server might
            return self._send(401, {"error": f"bad key {self.headers.get('Authorization')}"})
        contents = {
            "valid": json.dumps(GOOD_PLAN),
            "malformed": '{"steps": [{"action": "go_to", "target": "couch"',
            "schema": json.dumps({"steps": [{"action": "fly", "target": "moon"}]}),
            "extra_key": json.dumps(
                {"steps": [{"action": "go_to", "target": "couch", "speed": 9.0}]}
            ),
            "hallucinated": json.dumps({"steps": [{"action": "go_to", "target": "garage"}]}),
            "declined": json.dumps({"steps": []}),
            "coordinates": json.dumps({"steps": [{"action": "go_to", "target": "3, 4"}]}),
        }
        if mode == "no_choices":
            return self._send(200, {"object": "chat.completion"})
        if mode == "tool_call":
            reply = _chat_reply(None)
            reply["choices"][0]["message"]["tool_calls"] = [
                {"type": "function", "function": {"name": "rm", "arguments": "{}"}}
            ]
            return self._send(200, reply)
        return self._send(200, _chat_reply(contents[mode]))

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture(scope="module")
def _loopback() -> Iterator[ThreadingHTTPServer]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture()
def server(_loopback: ThreadingHTTPServer) -> ThreadingHTTPServer:
    """The loopback server with a fresh request log, replying "valid" unless a test says otherwise."""
    _loopback.requests = []  # type: ignore[attr-defined]
    _loopback.modes = ["valid"]  # type: ignore[attr-defined]
    return _loopback


@pytest.fixture(scope="module")
def demo() -> LandmarkMap:
    return load_landmarks(config_path("landmarks_demo.yaml"))


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)


def client(
    srv: ThreadingHTTPServer, demo: LandmarkMap, fallback: str = "reject", **kw: Any
) -> VlmClient:
    host, port = srv.server_address[:2]
    config = VlmConfig(
        base_url=f"http://{host}:{port}/v1",
        model="test-vlm",
        api_key_env=KEY_ENV,
        fallback=fallback,
        backoff_s=0.0,
        **{"timeout_s": 5.0, "retries": 0, **kw},
    )
    return VlmClient(config, demo, embedder=None)


def test_valid_reply_is_validated_and_grounded(
    server: ThreadingHTTPServer, demo: LandmarkMap
) -> None:
    result = client(server, demo).parse("go past the sofa and stop at the refrigerator")
    assert [(s.action, s.target) for s in result.plan.steps] == [
        ("go_past", "couch"),
        ("go_to", "fridge"),
    ]
    assert result.backend == "vlm"
    req = server.requests[0]
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["Authorization"] == f"Bearer {SECRET}"
    fmt = req["body"]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert (
        fmt["json_schema"]["schema"]["$defs"]["Step"]["properties"]["action"]["enum"][0] == "go_to"
    )
    assert "tools" not in req["body"] and req["body"]["model"] == "test-vlm"
    assert "- fridge (object; also called refrigerator)" in req["body"]["messages"][0]["content"]


def test_image_is_sent_as_jpeg_data_url(server: ThreadingHTTPServer, demo: LandmarkMap) -> None:
    image = np.zeros((960, 1280, 3), np.uint8)
    image[:, :640] = (0, 0, 255)
    client(server, demo).parse("go to the chair on the left", image=image)
    parts = server.requests[0]["body"]["messages"][1]["content"]
    assert parts[0] == {"type": "text", "text": "go to the chair on the left"}
    url = parts[1]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    import cv2

    decoded = cv2.imdecode(
        np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR
    )
    assert decoded.shape == (480, 640, 3)  # longest side capped at image_max_side


@pytest.mark.parametrize(
    ("mode", "code", "reason"),
    [
        ("malformed", "vlm_failed", "not valid JSON"),
        ("schema", "vlm_failed", "violates the plan schema"),
        ("extra_key", "vlm_failed", "violates the plan schema"),
        ("hallucinated", "unknown_landmark", "'garage' is not a landmark"),
        ("coordinates", "coordinates", "coordinates are not accepted"),
        ("declined", "unknown_landmark", "declined"),
        ("no_choices", "vlm_failed", "not a chat completion"),
        ("tool_call", "vlm_failed", "no text content"),
        ("401", "vlm_failed", "HTTP 401"),
        ("500", "vlm_failed", "HTTP 500"),
    ],
)
def test_bad_replies_are_rejected(
    server: ThreadingHTTPServer, demo: LandmarkMap, mode: str, code: str, reason: str
) -> None:
    server.modes = [mode]  # type: ignore[attr-defined]
    with pytest.raises(InstructionError, match=reason) as info:
        client(server, demo).parse("go to the couch")
    assert info.value.code == code and "\n" not in str(info.value)


def test_timeout(server: ThreadingHTTPServer, demo: LandmarkMap) -> None:
    server.modes = ["sleep"]  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    with pytest.raises(InstructionError, match="no reply within 0.3 s"):
        client(server, demo, timeout_s=0.3).parse("go to the couch")
    assert time.perf_counter() - t0 < 1.4


def test_server_down(demo: LandmarkMap) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    config = VlmConfig(
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key_env=KEY_ENV,
        retries=1,
        backoff_s=0.0,
        timeout_s=1.0,
        fallback="reject",
    )
    with pytest.raises(
        InstructionError, match=r"cannot reach the VLM server .*after 2 attempts"
    ) as info:
        VlmClient(config, demo).parse("go to the couch")
    assert info.value.code == "vlm_failed"


def test_retries_after_server_error(server: ThreadingHTTPServer, demo: LandmarkMap) -> None:
    server.modes = ["500", "500", "valid"]  # type: ignore[attr-defined]
    result = client(server, demo, retries=2).parse("go to the fridge")
    assert len(server.requests) == 3 and result.backend == "vlm"


@pytest.mark.parametrize("mode", ["malformed", "hallucinated", "500", "sleep"])
def test_fallback_to_embedded_parser(
    server: ThreadingHTTPServer, demo: LandmarkMap, mode: str
) -> None:
    server.modes = [mode]  # type: ignore[attr-defined]
    result = client(server, demo, fallback="embedded", timeout_s=0.3).parse(
        "go past the sofa and stop at the refrigerator"
    )
    assert [(s.action, s.target) for s in result.plan.steps] == [
        ("go_past", "couch"),
        ("go_to", "fridge"),
    ]
    assert (
        result.backend == "embedded (vlm fallback)" and "VLM backend failed" in result.warnings[0]
    )


def test_fallback_still_rejects_unknown_places(
    server: ThreadingHTTPServer, demo: LandmarkMap
) -> None:
    server.modes = ["hallucinated"]  # type: ignore[attr-defined]
    with pytest.raises(InstructionError, match="garage") as info:
        client(server, demo, fallback="embedded").parse("go to the garage")
    assert info.value.code == "unknown_landmark"


@pytest.mark.parametrize("mode", ["401", "valid", "malformed"])
def test_api_key_never_in_errors_or_logs(
    server: ThreadingHTTPServer, demo: LandmarkMap, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    server.modes = [mode]  # type: ignore[attr-defined]
    caplog.set_level(logging.DEBUG)
    try:
        client(server, demo).parse("go to the couch")
    except InstructionError as exc:
        assert SECRET not in str(exc) and SECRET not in repr(exc.__context__)
    assert SECRET not in caplog.text


def test_no_key_sends_no_authorization(
    server: ThreadingHTTPServer, demo: LandmarkMap, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV)
    client(server, demo).parse("go to the couch")
    assert "Authorization" not in server.requests[0]["headers"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_url": "file:///etc/passwd"},
        {"base_url": "localhost:8000"},
        {"fallback": "guess"},
        {"timeout_s": 0.0},
        {"retries": -1},
    ],
)
def test_bad_config_is_rejected(kwargs: dict) -> None:
    with pytest.raises(InstructionError):
        VlmConfig(**kwargs)


def test_build_request_without_image_and_endpoint() -> None:
    config = VlmConfig(base_url="http://h:1/v1/chat/completions")
    body = build_request("turn left", config, None)
    assert config.endpoint == "http://h:1/v1/chat/completions"
    assert body["messages"][1] == {"role": "user", "content": "turn left"}
    assert body["response_format"]["json_schema"]["schema"]["properties"]["steps"]["minItems"] == 0


@pytest.mark.parametrize(
    "bad", [np.zeros((4, 4), np.float32), np.zeros((0, 3, 3), np.uint8), b"not a jpeg"]
)
def test_bad_images_are_rejected(bad: Any) -> None:
    with pytest.raises(InstructionError):
        encode_jpeg_data_url(bad)
