"""Benchmark harness: scenarios, metrics, runner (local processes or Ray), reports, SDF export
and MCAP scoring. Command line: `nav-policy bench | metrics | export-sdf` (bench/cli.py)."""

from nav_policy.bench.metrics import Track, episode_metrics, summarize
from nav_policy.bench.scenarios import Scenario, episode_seed, scenarios

__all__ = ["Scenario", "Track", "episode_metrics", "episode_seed", "scenarios", "summarize"]
