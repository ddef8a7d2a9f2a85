"""BARN worlds: import-barn reproduces the SDF cylinders, the splits, the training configs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml

from nav_policy.bench.barn import (
    N_WORLDS,
    WORLD_DIR,
    import_barn,
    is_test,
    referenced_worlds,
    sdf_obstacles,
    split_indices,
    suite_files,
)
from nav_policy.errors import ConfigError, WorldError
from nav_policy.sim.world import Cylinder, load_world

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "test" / "data" / "barn"
SHIPPED = ROOT / "sim" / "worlds" / "barn"
FIXTURE_IDS = (0, 1, 299)


def _sdf_cylinders(path: Path) -> np.ndarray:
    """(x, y, radius) of every unit_cylinder model, read straight from the SDF's <model>s."""
    world = ET.parse(path).getroot().find("world")
    rows = []
    for model in world.findall("model"):
        cyl = model.find("link/collision/geometry/cylinder")
        if cyl is None:
            continue
        x, y = (float(v) for v in model.find("pose").text.split()[:2])
        rows.append((x, y, float(cyl.find("radius").text)))
    return np.array(rows)


@pytest.mark.parametrize("index", FIXTURE_IDS)
def test_shipped_world_has_every_cylinder_of_its_sdf(index: int) -> None:
    expected = _sdf_cylinders(FIXTURES / f"world_{index}.world")
    data = yaml.safe_load((SHIPPED / f"world_{index}.yaml").read_text())
    world = load_world(SHIPPED / f"world_{index}.yaml")
    ox, oy = data["source"]["origin"]
    got = np.array([(ob.center[0] + ox, ob.center[1] + oy, ob.radius) for ob in world.obstacles
                    if isinstance(ob, Cylinder)])
    assert 181 <= len(expected) <= 365
    assert len(got) == len(world.obstacles) == len(expected)
    np.testing.assert_allclose(got, expected, atol=1e-6)  # same order, same positions
    # the challenge's start and goal (BARN frame, since Feb 2024), our reference length
    assert [world.start[0] + ox, world.start[1] + oy] == pytest.approx([-2.25, 3.0])
    assert [world.goal[0] + ox, world.goal[1] + oy] == pytest.approx([-2.25, 13.0])
    assert world.start[2] == pytest.approx(1.57)
    assert 10.0 <= world.shortest_path < 14.0
    assert data["source"]["split"] == ("test" if index % 6 == 0 else "train")


def test_import_barn_reproduces_the_shipped_files(tmp_path: Path) -> None:
    repo = tmp_path / "the-barn-challenge"
    (repo / WORLD_DIR).mkdir(parents=True)
    for i in FIXTURE_IDS[:2]:
        shutil.copy(FIXTURES / f"world_{i}.world", repo / WORLD_DIR / f"world_{i}.world")
    written = import_barn(repo, tmp_path / "out", 0.2, indices=FIXTURE_IDS[:2])
    for path in written:
        assert path.read_text() == (SHIPPED / path.name).read_text()
    assert "MIT License" in (tmp_path / "out" / "LICENSE").read_text()


def test_import_barn_cli_names_a_wrong_folder(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "nav_policy.cli", "import-barn", str(tmp_path),
                          "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert out.returncode == 2
    assert "not a BARN Challenge checkout" in out.stderr


def test_sdf_with_unsupported_geometry_is_a_world_error(tmp_path: Path) -> None:
    bad = tmp_path / "mesh.world"
    bad.write_text("<sdf version='1.6'><world name='default'><model name='rock'><pose>1 2 0 0 0 0"
                   "</pose><link name='link'><collision name='c'><geometry><mesh><uri>x</uri>"
                   "</mesh></geometry></collision></link></model></world></sdf>")
    with pytest.raises(WorldError, match="rock.*unsupported collision geometry"):
        sdf_obstacles(bad)
    (tmp_path / "broken.world").write_text("<sdf><world>")
    with pytest.raises(WorldError, match="not valid XML"):
        sdf_obstacles(tmp_path / "broken.world")


def test_splits_are_the_challenges() -> None:
    test, train = split_indices("barn-test"), split_indices("barn-train")
    assert len(test) == 50 and len(train) == 250
    assert set(test) | set(train) == set(range(N_WORLDS)) and not set(test) & set(train)
    assert all(i % 6 == 0 for i in test) and test[:3] == [0, 6, 12]
    assert len(suite_files("barn-test")) == 50 and len(suite_files("barn-train")) == 250
    with pytest.raises(ConfigError, match="unknown suite"):
        split_indices("barn-all")


def test_referenced_worlds_finds_files_and_suites() -> None:
    cfg = {"eval": {"worlds": ["sim/worlds/barn/world_6.yaml", "x/barn/world_7.yaml"]},
           "note": "barn-train"}
    assert {6, 7} <= referenced_worlds(cfg)
    assert 0 in referenced_worlds(["--suite barn-test"])


@pytest.mark.parametrize("config", sorted((ROOT / "config").glob("train_*.yaml")),
                         ids=lambda p: p.name)
def test_training_configs_never_touch_the_barn_test_split(config: Path) -> None:
    text = config.read_text()
    data = yaml.safe_load(text)
    used = referenced_worlds(data) | referenced_worlds(re.findall(r"#.*", text))
    assert not [i for i in used if is_test(i)], f"{config.name} uses BARN test worlds"
