"""instruction_node: natural-language instruction -> grounded plan on `mission`.

Subscribes instruction (std_msgs/String) and, for the vlm backend, image (sensor_msgs/Image,
sensor QoS, optional). Publishes mission (std_msgs/String: the plan JSON of docs/DESIGN.md, exactly
`{"steps": [...]}`) and, when an instruction cannot be parsed or grounded, a rejection on
mission_status (std_msgs/String JSON: {"state": "rejected", "reason", "code", "instruction"});
a rejected instruction publishes no mission, so the robot does not move. Parsing is
nav_policy.instruct (embedded parser by default; docs/INSTRUCTIONS.md).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import String

from nav_policy.errors import ConfigError, NavPolicyError
from nav_policy.ros import msgs
from nav_policy.ros.mission_params import declare_specs

NODE = "instruction_node"
MAX_INSTRUCTION_CHARS = 2000


def image_array(msg: Image) -> np.ndarray | None:
    """An 8-bit RGB/BGR/mono Image as an array for JPEG encoding (None for other encodings)."""
    channels = {"rgb8": 3, "bgr8": 3, "mono8": 1}.get(msg.encoding)
    if channels is None or msg.height == 0 or msg.width == 0:
        return None
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    rows = data.reshape(msg.height, msg.step)[:, : msg.width * channels]
    img = rows.reshape(msg.height, msg.width, channels)
    return img[..., ::-1].copy() if msg.encoding == "rgb8" else img  # OpenCV wants BGR


def rejection(text: str, reason: str, code: str) -> dict[str, Any]:
    """The mission_status message of a rejected instruction."""
    return {"state": "rejected", "reason": reason, "code": code, "instruction": text[:200]}


def build_parser(p: dict[str, Any]) -> tuple[Any, Any]:
    """(parser with .parse(text[, image]), landmark map) from the node's parameters."""
    from nav_policy.instruct import InstructionParser, default_embedder, load_landmarks
    from nav_policy.paths import config_path

    landmarks = load_landmarks(p["landmarks"] or config_path("landmarks_demo.yaml"))
    embedder = default_embedder() if p["use_embeddings"] else None
    parser = InstructionParser(landmarks, embedder)
    if p["backend"] == "embedded":
        return parser, landmarks
    from nav_policy.instruct.vlm import VlmClient, VlmConfig

    config = VlmConfig(base_url=p["vlm_url"], model=p["vlm_model"],
                       api_key_env=p["vlm_api_key_env"], timeout_s=p["vlm_timeout"],
                       fallback=p["vlm_fallback"])
    return VlmClient(config, landmarks, embedder, fallback_parser=parser), landmarks


class InstructionNode(Node):
    def __init__(self, node_name: str = NODE, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.p = declare_specs(self, NODE)
        self.parser, self.landmarks = build_parser(self.p)
        self.image: tuple[float, np.ndarray] | None = None
        self.mission_pub = self.create_publisher(String, "mission", msgs.COMMAND_QOS)
        self.status_pub = self.create_publisher(String, "mission_status", msgs.COMMAND_QOS)
        self.create_subscription(String, "instruction", self._on_instruction, msgs.COMMAND_QOS)
        if self.p["backend"] == "vlm" and self.p["use_image"]:
            self.create_subscription(Image, "image", self._on_image, msgs.SENSOR_QOS)
        # a periodic wake-up: without any timer the executor waits in C with no timeout and
        # Ctrl-C / SIGTERM would only be seen at the next message
        self.create_timer(0.5, self._expire_image)
        self.get_logger().info(f"{self.p['backend']} parser ready, {len(self.landmarks)} "
                               f"landmarks from {self.landmarks.source}")

    def _on_image(self, msg: Image) -> None:
        img = image_array(msg)
        if img is not None:
            self.image = (time.monotonic(), img)

    def _expire_image(self) -> None:
        if self.image is not None and \
                time.monotonic() - self.image[0] > self.p["image_max_age"]:
            self.image = None

    def _fresh_image(self) -> np.ndarray | None:
        if self.image is None or time.monotonic() - self.image[0] > self.p["image_max_age"]:
            return None
        return self.image[1]

    def _on_instruction(self, msg: String) -> None:
        text = msg.data.strip()
        if len(text) > MAX_INSTRUCTION_CHARS:
            self._reject(text, f"instruction longer than {MAX_INSTRUCTION_CHARS} characters",
                         "too_long")
            return
        try:
            result = self.parse(text)
        except NavPolicyError as exc:
            self._reject(text, str(exc), getattr(exc, "code", "invalid"))
            return
        for warning in result.warnings:
            self.get_logger().warning(warning)
        plan = result.plan.model_dump(mode="json")
        self.mission_pub.publish(String(data=json.dumps(plan)))
        steps = ", ".join(f"{s['action']} {s['target'] or ''}".strip() for s in plan["steps"])
        self.get_logger().info(f"mission: {steps}")

    def parse(self, text: str) -> Any:
        if self.p["backend"] == "vlm":
            return self.parser.parse(text, self._fresh_image())
        return self.parser.parse(text)

    def _reject(self, text: str, reason: str, code: str) -> None:
        self.get_logger().warning(f"instruction rejected ({code}): {reason}")
        self.status_pub.publish(msgs.json_msg(rejection(text, reason, code)))


def main(args: list[str] | None = None) -> int:
    def factory() -> InstructionNode:
        try:
            return InstructionNode()
        except (OSError, ValueError) as exc:
            raise ConfigError(str(exc)) from exc

    return msgs.run_single(NODE, factory, args if args is not None else sys.argv)


if __name__ == "__main__":
    sys.exit(main())
