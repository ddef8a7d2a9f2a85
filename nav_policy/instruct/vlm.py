"""VLM backend: an OpenAI-compatible chat-completions client (standard library only).

It POSTs {base_url}/chat/completions with the instruction (and, optionally, the current camera
image as a JPEG data URL) and `response_format: {"type": "json_schema", "json_schema": {"name",
"strict": true, "schema": <plan schema>}}`, the structured-output request shape of the OpenAI
API that vLLM, Ollama and llama.cpp's server accept (docs/INSTRUCTIONS.md). The reply's
message content must be one JSON object; it is validated by the same pydantic schema and
grounded against the same landmark map as the embedded parser's output, so a hallucinated
landmark, a coordinate or an out-of-range value is rejected exactly as it would be from text.

Nothing but a Plan comes out: no tools are offered, tool calls in a reply are ignored, nothing
in a reply is executed or evaluated. On any failure the client falls back to the embedded parser
(fallback="embedded") or rejects the instruction (fallback="reject").

The API key is read from the environment variable named by VlmConfig.api_key_env at request
time; it is sent only in the Authorization header and never logged or put in an exception.
"""

from __future__ import annotations

import base64
import copy
import http.client
import json
import logging
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nav_policy.instruct.errors import InstructionError
from nav_policy.instruct.grounding import Embedder, Grounder
from nav_policy.instruct.landmarks import LandmarkMap
from nav_policy.instruct.parser import (
    InstructionParser,
    ParseResult,
    RawStep,
    _to_plan,
    ground_steps,
)
from nav_policy.instruct.schema import plan_from_data, plan_json_schema

log = logging.getLogger(__name__)

DEFAULT_API_KEY_ENV = "NAV_POLICY_VLM_API_KEY"
FALLBACKS = ("embedded", "reject")
MAX_REPLY_BYTES = 1 << 20
_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class VlmConfig:
    """Where and how to ask. base_url is the server's OpenAI root, e.g. http://127.0.0.1:8000/v1."""

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "default"
    api_key_env: str = DEFAULT_API_KEY_ENV
    timeout_s: float = 10.0
    retries: int = 2
    backoff_s: float = 0.5
    fallback: str = "embedded"
    temperature: float = 0.0
    max_tokens: int = 512
    image_max_side: int = 640
    jpeg_quality: int = 80

    def __post_init__(self) -> None:
        url = urllib.parse.urlsplit(self.base_url)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise InstructionError(
                f"VLM base_url must be an http(s) URL, got {self.base_url!r:.80}", code="vlm_failed"
            )
        if self.fallback not in FALLBACKS:
            raise InstructionError(
                f"VLM fallback must be one of {', '.join(FALLBACKS)}", code="vlm_failed"
            )
        if not (
            self.timeout_s > 0 and self.retries >= 0 and self.backoff_s >= 0 and self.max_tokens > 0
        ):
            raise InstructionError(
                "VLM timeout_s and max_tokens must be > 0, retries and backoff_s >= 0",
                code="vlm_failed",
            )

    @property
    def endpoint(self) -> str:
        """The chat-completions URL (base_url may already end with it)."""
        base = self.base_url.rstrip("/")
        return base if base.endswith("/chat/completions") else base + "/chat/completions"


class VlmFailure(Exception):
    """The VLM gave no usable plan. The message is one line and never contains the API key."""

    def __init__(self, message: str, code: str = "vlm_failed") -> None:
        super().__init__(message)
        self.code = code


def encode_jpeg_data_url(image: np.ndarray | bytes, max_side: int = 640, quality: int = 80) -> str:
    """A camera image (BGR or grey uint8 array, or JPEG bytes) as a data:image/jpeg;base64 URL."""
    if isinstance(image, (bytes, bytearray)):
        if not bytes(image[:3]) == b"\xff\xd8\xff":
            raise InstructionError("image bytes are not a JPEG", code="invalid_value")
        return "data:image/jpeg;base64," + base64.b64encode(bytes(image)).decode("ascii")
    import cv2

    arr = np.asarray(image)
    if (
        arr.dtype != np.uint8
        or arr.ndim not in (2, 3)
        or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4))
        or arr.size == 0
    ):
        raise InstructionError(
            "camera image must be a non-empty HxW or HxWx3 uint8 array", code="invalid_value"
        )
    scale = max_side / max(arr.shape[:2])
    if scale < 1.0:
        size = (max(1, round(arr.shape[1] * scale)), max(1, round(arr.shape[0] * scale)))
        arr = cv2.resize(arr, size, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", arr, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise InstructionError("could not encode the camera image as JPEG", code="invalid_value")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def system_prompt(landmarks: LandmarkMap | None) -> str:
    """Instructions for the model: the plan rules and the landmarks it may name."""
    lines = [
        "You turn a robot navigation instruction into a plan. Reply with one JSON object that follows the schema.",
        "Actions: go_to, go_past, go_through (a door or corridor), go_into and exit (an area), "
        "turn (direction left|right|around, optional angle_deg), move (direction forward|backward, distance_m), "
        "wait (duration_s), stop. Set every field an action does not use to null.",
        "Targets are landmark names only: never coordinates, never a speed.",
        "Stairs, handling objects (take, bring, open, switch on), searching for things and "
        'following a person are not plan steps: reply {"steps": []} for them.',
        'If the instruction names a place that is not listed, or cannot be done, reply {"steps": []}.',
    ]
    if landmarks is not None:
        lines.append("Landmarks (use the name before the parenthesis exactly):")
        for lm in landmarks:
            also = f"; also called {', '.join(lm.aliases)}" if lm.aliases else ""
            lines.append(f"- {lm.name} ({lm.kind}{also})")
    lines.append(
        "An attached image is the robot's current front camera view: use it only to tell which landmark is meant."
    )
    return "\n".join(lines)


def request_schema() -> dict[str, Any]:
    """The plan schema sent as response_format; an empty steps list is allowed as 'cannot do'."""
    schema = copy.deepcopy(plan_json_schema(strict=True))
    schema["properties"]["steps"]["minItems"] = 0
    return schema


def build_request(
    text: str,
    config: VlmConfig,
    landmarks: LandmarkMap | None,
    image_url: str | None = None,
    robot_area: str | None = None,
) -> dict[str, Any]:
    """The JSON body of the chat-completions request (robot_area: where the robot is now)."""
    user: Any = text if image_url is None else [
        {"type": "text", "text": text},
        {"type": "image_url", "image_url": {"url": image_url}},
    ]  # fmt: skip
    return {
        "model": config.model,
        "messages": [
            {"role": "system", "content": system_prompt(landmarks) + (
                f"\nThe robot is now in the {robot_area}." if robot_area else "")},
            {"role": "user", "content": user},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "navigation_plan", "strict": True, "schema": request_schema()},
        },
        "temperature": config.temperature,
        "max_tokens": config.max_tokens,
        "stream": False,
    }


def _scrub(message: str, secret: str | None) -> str:
    message = " ".join(message.split())[:300]
    return message.replace(secret, "***") if secret else message


def reply_content(reply: Any) -> str:
    """choices[0].message.content of a chat-completions reply; VlmFailure if there is none."""
    try:
        choice = reply["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError):
        raise VlmFailure("reply is not a chat completion (no choices[0].message)") from None
    if not isinstance(message, dict):
        raise VlmFailure("reply message is not an object")
    if message.get("refusal"):
        raise VlmFailure("the model refused")
    if choice.get("finish_reason") == "length":
        raise VlmFailure("reply truncated (finish_reason=length)")
    content = message.get("content")
    if not isinstance(content, str) or not content.strip():
        raise VlmFailure("reply has no text content")
    return content


def plan_steps_from_content(content: str) -> list[RawStep]:
    """The reply content as raw steps (targets still to be grounded); VlmFailure if not a plan."""
    try:
        data = json.loads(content)
    except (json.JSONDecodeError, RecursionError):
        raise VlmFailure("reply content is not valid JSON") from None
    if isinstance(data, dict) and data.get("steps") == [] and set(data) == {"steps"}:
        raise VlmFailure(
            "the model declined: no plan for this instruction with the listed landmarks",
            code="unknown_landmark",
        )
    try:
        plan = plan_from_data(data)
    except InstructionError as exc:
        raise VlmFailure(f"reply violates the plan schema ({exc})") from None
    return [
        RawStep(s.action, phrase=s.target, direction=s.direction, distance_m=s.distance_m,
                angle_deg=s.angle_deg, duration_s=s.duration_s)
        for s in plan.steps
    ]  # fmt: skip


class VlmClient:
    """Instruction (+ optional camera image) -> ParseResult through an OpenAI-compatible server."""

    def __init__(
        self,
        config: VlmConfig,
        landmarks: LandmarkMap | None = None,
        embedder: Embedder | None = None,
        fallback_parser: InstructionParser | None = None,
    ) -> None:
        self.config = config
        self.landmarks = landmarks
        self.grounder = Grounder(landmarks, embedder) if landmarks is not None else None
        self.fallback_parser = fallback_parser or InstructionParser(landmarks, embedder)

    def parse(
        self,
        text: str,
        image: np.ndarray | bytes | None = None,
        pose: Sequence[float] | None = None,
    ) -> ParseResult:
        """The plan for `text`; on a VLM failure, the embedded parser's plan or InstructionError.

        pose (x, y, yaw) tells the model which area the robot is in (for "exit the room") and
        is used when grounding its reply, as in the embedded parser."""
        if not isinstance(text, str) or not text.strip():
            raise InstructionError("empty instruction", code="empty")
        try:
            return self._ask(text, image, pose)
        except VlmFailure as exc:
            reason = str(exc)
            log.warning("VLM backend failed: %s", reason)
            if self.config.fallback == "reject":
                raise InstructionError(f"VLM backend: {reason}", code=exc.code) from None
        try:
            result = self.fallback_parser.parse(text, pose=pose)
        except InstructionError as exc:
            raise InstructionError(
                f"{exc} (VLM backend failed too: {reason})", code=exc.code
            ) from None
        warning = f"VLM backend failed ({reason}); used the embedded parser"
        return ParseResult(
            result.plan, (warning, *result.warnings), result.groundings, "embedded (vlm fallback)"
        )

    def _ask(
        self, text: str, image: np.ndarray | bytes | None, pose: Sequence[float] | None = None
    ) -> ParseResult:
        image_url = None
        if image is not None:
            image_url = encode_jpeg_data_url(
                image, self.config.image_max_side, self.config.jpeg_quality
            )
        area = None
        if pose is not None and self.landmarks is not None:
            found = self.landmarks.area_at(float(pose[0]), float(pose[1]))
            area = found.name if found is not None else None
        body = build_request(text, self.config, self.landmarks, image_url, area)
        steps = plan_steps_from_content(reply_content(self._complete(body)))
        try:
            grounded, groundings = ground_steps(steps, self.grounder, pose)
            plan = _to_plan(grounded)
        except InstructionError as exc:
            raise VlmFailure(f"reply rejected: {exc}", code=exc.code) from None
        return ParseResult(plan, (), tuple(groundings), "vlm")

    def _complete(self, body: dict[str, Any]) -> Any:
        """POST with retries on transport errors and retryable HTTP statuses; the decoded reply."""
        key = os.environ.get(self.config.api_key_env) or None
        attempts = self.config.retries + 1
        last = "no attempt made"
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.config.backoff_s * 2 ** (attempt - 1))
            try:
                return self._post(body, key)
            except _Retryable as exc:
                last = _scrub(str(exc), key)
                log.info("VLM attempt %d/%d failed: %s", attempt + 1, attempts, last)
        raise VlmFailure(f"{last} (after {attempts} attempt{'s' if attempts > 1 else ''})")

    def _post(self, body: dict[str, Any], key: str | None) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(
            self.config.endpoint, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:  # noqa: S310 - http(s) only
                raw = response.read(MAX_REPLY_BYTES + 1)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code in _RETRY_STATUS:
                raise _Retryable(f"HTTP {exc.code} from the VLM server") from None
            raise VlmFailure(_scrub(f"HTTP {exc.code} from the VLM server", key)) from None
        except TimeoutError:
            raise _Retryable(f"no reply within {self.config.timeout_s:g} s") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, (TimeoutError, socket.timeout)):
                raise _Retryable(f"no reply within {self.config.timeout_s:g} s") from None
            raise _Retryable(f"cannot reach the VLM server ({_reason_text(reason)})") from None
        except (http.client.HTTPException, ConnectionError, OSError) as exc:
            raise _Retryable(
                f"connection to the VLM server failed ({type(exc).__name__})"
            ) from None
        if len(raw) > MAX_REPLY_BYTES:
            raise VlmFailure("reply larger than 1 MiB")
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise VlmFailure("reply body is not JSON") from None


class _Retryable(Exception):
    """A transport failure worth another attempt."""


def _reason_text(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return type(reason).__name__ if isinstance(reason, BaseException) else str(reason)
