"""Benchmark scenarios: which worlds an episode runs in, derived only from (seed, tier, index).

Episode i of tier T under seed S runs in the world generate_world(T, episode_seed(S, T, i)), so
two runs with the same arguments see the same worlds and every planner in a comparison gets the
same episodes. `nav-policy export-sdf` uses the same seeds, so the exported worlds are the
benchmark's. A world file (sim/worlds/*.yaml) gives fixed-world scenarios instead: every
episode starts from the file's start pose and only the planner seed changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nav_policy.errors import ConfigError, WorldError
from nav_policy.sim.generate import (
    KNOWN_TIERS,
    TIERS,
    WorldMaps,
    analyse_world,
    generate_world,
)
from nav_policy.sim.world import World, load_world

ALL_TIERS: tuple[str, ...] = tuple(TIERS)
PROTOCOLS: tuple[str, ...] = ("barn", "ours")

# How a run names its worlds; every JSON that reports episodes records which ("world_naming"),
# so a figure can be traced to its worlds. The benchmark, export-sdf and the demo's sweeps use
# "hashed"; the trainers' held-out evaluation and `python -m nav_policy.planners.evaluate` use
# "sequential". The two give different worlds for the same seed: compare only like with like.
WORLD_NAMING: dict[str, str] = {
    "hashed": "episode i of tier T under seed S runs in generate_world(T, episode_seed(S, T, i)), "
              "episode_seed = the first 31 bits of sha256('nav_policy.bench:S:T:i')",
    "sequential": "episode i under seed S runs in generate_world(T, S + i)",
}


def sequential_seed(seed: int, index: int) -> int:
    """World seed of episode `index` under the "sequential" naming (seed + index)."""
    return int(seed) + int(index)


def episode_seed(seed: int, tier: str, index: int) -> int:
    """World seed of episode `index` of `tier` under benchmark seed `seed` (stable everywhere)."""
    digest = hashlib.sha256(f"nav_policy.bench:{int(seed)}:{tier}:{int(index)}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@dataclass(frozen=True)
class Scenario:
    """One benchmark episode's world: tier (or world name), index, world seed, world file."""

    tier: str
    index: int
    world_seed: int
    world_file: str | None = None
    protocol: str = "ours"  # "barn": BARN's goal radius, time limit and score (suites only)
    naming: str = "hashed"  # how world_seed was derived (WORLD_NAMING)

    @property
    def key(self) -> str:
        return f"{self.tier}/{self.index:03d}"

    def reset_options(self) -> dict[str, Any]:
        """The env.reset options that build this scenario's world."""
        if self.world_file:
            return {"world": self.world_file}
        return {"tier": self.tier, "world_seed": self.world_seed}

    def world(self, radius: float) -> tuple[World, WorldMaps]:
        """The world and its maps (same seed, same world)."""
        if self.world_file:
            world = load_world(self.world_file)
            return world, analyse_world(world, radius)
        return generate_world(self.tier, self.world_seed, radius)


def split_list(values: Iterable[str] | None) -> list[str]:
    """Flatten repeated and comma-separated option values, keeping order, dropping duplicates."""
    out: list[str] = []
    for value in values or ():
        for item in str(value).split(","):
            item = item.strip()
            if item and item not in out:
                out.append(item)
    return out


def parse_tiers(values: Iterable[str] | None) -> list[str]:
    """Tier names from `--tier` values (repeatable, comma lists); the four classic tiers when
    none given (crowd only by name)."""
    tiers = split_list(values) or list(ALL_TIERS)
    for tier in tiers:
        if tier not in KNOWN_TIERS:
            raise WorldError(f"unknown tier {tier!r}; expected one of {', '.join(KNOWN_TIERS)}")
    return tiers


def world_scenarios(files: Sequence[str], episodes: int, seed: int,
                    radius: float) -> list[Scenario]:
    """`episodes` scenarios per world file; each file is checked (readable, feasible) first."""
    if episodes < 1:
        raise ConfigError(f"--episodes must be at least 1, got {episodes}")
    out: list[Scenario] = []
    for file in files:
        path = str(Path(file).resolve())
        world = load_world(path)
        analyse_world(world, radius)  # WorldError when start or goal is blocked
        out += [Scenario(world.name, i, episode_seed(seed, f"world:{world.name}", i), path)
                for i in range(episodes)]
    return out


def scenarios(tiers: Sequence[str], episodes: int, seed: int) -> list[Scenario]:
    """`episodes` scenarios per tier, tier by tier."""
    if episodes < 1:
        raise ConfigError(f"--episodes must be at least 1, got {episodes}")
    return [Scenario(tier, i, episode_seed(seed, tier, i)) for tier in tiers for i in range(episodes)]


def suite_scenarios(suites: Sequence[str], episodes: int, seed: int,
                    protocol: str = "barn") -> list[Scenario]:
    """`episodes` scenarios per world of each suite (barn-test, barn-train), world by world;
    the tier column is the suite, the index runs over the suite's episodes."""
    from nav_policy.bench.barn import split_indices, suite_files

    if episodes < 1:
        raise ConfigError(f"--episodes must be at least 1, got {episodes}")
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
    out: list[Scenario] = []
    for suite in suites:
        files = suite_files(suite)
        pairs = [(i, path) for i, path in zip(split_indices(suite), files)
                 for _ in range(episodes)]
        out += [Scenario(suite, n, episode_seed(seed, f"{suite}:{i}", n % episodes),
                         str(path.resolve()), protocol) for n, (i, path) in enumerate(pairs)]
    return out
