"""Errors that carry a one-line, user-facing reason (the CLI prints them and exits 2)."""


class NavPolicyError(Exception):
    """Base class: bad input from a user, a file or a sensor. The message is the reason."""


class ConfigError(NavPolicyError):
    """A configuration, parameter or world file is invalid."""


class WorldError(NavPolicyError):
    """A world cannot be built or has no feasible path."""


class CodecError(NavPolicyError):
    """Sensor data cannot be turned into a policy observation (NaN, empty, wrong length)."""


class ModelError(NavPolicyError):
    """A model file is missing, unreadable or does not match the codec in use."""
