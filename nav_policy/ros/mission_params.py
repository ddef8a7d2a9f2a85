"""Parameter specs of instruction_node and mission_executor_node.

They live in nav_policy.ros.params with the other nodes' specs (one declaration path, one
runtime check); this module keeps the names the two nodes import.
"""

from __future__ import annotations

from nav_policy.ros.params import (
    EXECUTOR,
    INSTRUCTION,
    NODE_PARAMS,
    check_values,
    declare,
)

NODE_SPECS = {k: NODE_PARAMS[k] for k in ("instruction_node", "mission_executor_node")}
declare_specs = declare

__all__ = ["EXECUTOR", "INSTRUCTION", "NODE_SPECS", "check_values", "declare_specs"]
