"""Ray, shared by the benchmark (episodes as tasks) and the trainers (one run per seed).

`ray` is an optional dependency (the `dist` extra), imported only when a command asks for it.
"""

from __future__ import annotations

from typing import Any

from nav_policy.errors import ConfigError


def import_ray() -> Any:
    """The ray module, or a ConfigError that says how to install it."""
    try:
        import ray  # optional dependency: only --ray runs need it
    except ImportError as exc:
        raise ConfigError("--ray needs the optional dependency 'ray' (pip install 'ray>=2.9' "
                          "or the package's [dist] extra)") from exc
    return ray


def ray_start(ray: Any, address: str, num_cpus: int) -> bool:
    """Connect to (or start, for address 'local') Ray unless already connected; True when this
    call started it (the caller then shuts it down)."""
    if ray.is_initialized():
        return False
    try:
        if address == "local":
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot connect to Ray at {address!r}: {first}") from exc
    return True
