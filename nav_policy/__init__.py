"""nav_policy: a ROS 2 navigation stack whose local planners are learned."""

__version__ = "0.1.0"

# Registering the Gymnasium ids is cheap (no PyBullet, scipy or torch import until make()).
# The package root registers both families, so envs/ need not import deception/.
from nav_policy.deception.registration import register as _register_deception
from nav_policy.envs import register_envs as _register_envs

_register_envs()
_register_deception()
