"""nav_policy: a ROS 2 navigation stack whose local planners are learned."""

__version__ = "0.1.0"

# Registering the Gymnasium envs is cheap (no PyBullet import until make()).
from nav_policy.envs import register_envs as _register_envs

_register_envs()
