"""Energy-based planner: analytic gradient vs autograd, a real (tiny) collection + training run,
real ONNX export run in onnxruntime, the K-step inference and the energy gate."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from nav_policy.codecs import ActionSpec
from nav_policy.errors import ConfigError, ModelError
from nav_policy.planners.learned import PolicyPlanner
from nav_policy.policies.ebm import EbmInference, EnergyModel, InferenceSettings, unroll
from nav_policy.runtime.session import PolicyRuntime
from nav_policy.training.ebm_config import load_ebm_config
from nav_policy.training.ebm_data import action_chunks, load_dataset

SMOKE = """
seed: 3
env: {motion_mode: kinematic, control_hz: 10.0, sectors: 60, goal_tolerance: 0.25}
data: {episodes: 2, workers: 1, tiers: {easy: 1.0}, noise_std_max: 0.2, perturb_prob: 0.05,
       dagger_rounds: 1, dagger_episodes: 1, dagger_epochs: 1}
model: {horizon: 4, hidden: [32, 32]}
train: {epochs: 2, batch_size: 64, counter_examples: 8, energy_anchor_weight: 0.1,
       density_weight: 0.1, risk_steps: 10, crash_action_weight: 0.1, lr_schedule: cosine}
eval: {every_epochs: 1, episodes_per_tier: 1, tiers: [easy]}
"""


@pytest.mark.parametrize("hidden, sectors", [([16], 0), ([32, 16], 0), ([24, 24, 8], 0),
                                             ([32, 16], 60)])
def test_analytic_gradient_equals_autograd(hidden: list[int], sectors: int) -> None:
    """sectors > 0: with the proximity features, which touch only the observation path."""
    torch.manual_seed(0)
    m = EnergyModel(67, 4, hidden, proximity_sectors=sectors, range_min=0.12).double()
    m.set_normalisation(torch.randn(67).double(), torch.rand(67).double() + 0.5)
    obs = torch.randn(32, 67, dtype=torch.float64)
    a = (torch.rand(32, 8, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    e_auto = m(obs, a)
    (g_auto,) = torch.autograd.grad(e_auto.sum(), a)
    e, g = m.energy_and_grad(m.obs_features(obs), a)
    assert torch.allclose(e, e_auto, atol=1e-12)
    assert torch.allclose(g, g_auto, atol=1e-12)
    assert g.abs().max() > 1e-6  # a zero gradient would make the comparison empty


def test_unroll_gives_second_order_gradients() -> None:
    """Training differentiates through the analytic gradient of the unroll: torch's gradcheck
    (finite differences vs backward) on a weight of the energy network and on alpha."""
    from torch.func import functional_call

    torch.manual_seed(1)
    m = EnergyModel(6, 2, [8, 8]).double()
    obs = torch.randn(5, 6, dtype=torch.float64)
    target = torch.rand(5, 4, dtype=torch.float64) * 1.6 - 0.8

    class Loss(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = m

        def forward(self, o: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
            steps = unroll(self.m, self.m.obs_features(o), alpha, 3)
            return torch.stack([((s - target) ** 2).mean() for s in steps]).mean()

    wrapper = Loss()

    def loss(weight: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        return functional_call(wrapper, {"m.hidden.0.weight": weight}, (obs, alpha))

    w = m.hidden[0].weight.detach().clone().requires_grad_(True)
    alpha = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(loss, (w, alpha), eps=1e-6, atol=1e-7)
    (g,) = torch.autograd.grad(loss(w, alpha), w)
    assert g.abs().max() > 1e-8  # the weight does reach the loss through the gradient steps


def test_nesterov_momentum_in_training_unroll_and_inference_graph() -> None:
    """mu > 0: the unroll (training) and EbmInference (the exported module) take the same
    steps, which follow g_k = grad E(a_k + mu u_k), a_{k+1} = clip(a_k + mu u_k - alpha g_k)
    written out here by hand; mu = 0 is the plain descent; they differ from each other."""
    torch.manual_seed(4)
    m = EnergyModel(67, 4, [32, 32]).double().eval()
    obs = torch.randn(16, 67, dtype=torch.float64)
    feat = m.obs_features(obs)
    alpha, mu = 0.4, 0.6
    a, u = m.start.expand(16, -1), torch.zeros(16, 8, dtype=torch.float64)
    for _ in range(3):
        _, g = m.energy_and_grad(feat, a + mu * u)
        nxt = torch.clamp(a + mu * u - alpha * g, -1.0, 1.0)
        u, a = nxt - a, nxt
    with torch.no_grad():
        trained = unroll(m, feat, torch.tensor(alpha, dtype=torch.float64), 3, momentum=mu)[-1]
        graph = EbmInference(m, alpha, InferenceSettings(3, 3, 0.0, momentum=mu), ActionSpec())(obs)[3]
        plain = unroll(m, feat, torch.tensor(alpha, dtype=torch.float64), 3)[-1]
    assert torch.allclose(trained, a, atol=1e-12) and torch.allclose(graph.reshape(16, -1), a, atol=1e-12)
    assert (plain - a).abs().max() > 1e-4


def test_action_chunks_stay_inside_episodes() -> None:
    act = np.arange(14, dtype=np.float32).reshape(7, 2)
    ep = np.array([0, 0, 0, 1, 1, 1, 1])
    c = action_chunks(act, ep, 3)
    assert c.shape == (7, 3, 2)
    assert c[1, :, 0].tolist() == [2, 4, 4]  # episode 0 ends at index 2: its last label repeats
    assert c[3, :, 0].tolist() == [6, 8, 10]


def test_inference_early_stop_and_dynamic_compute() -> None:
    torch.manual_seed(2)
    m = EnergyModel(67, 4, [32, 32]).eval()
    obs = torch.randn(16, 67)
    spec = ActionSpec()
    # eps above every gradient norm: no step is taken, the command is the learned start
    cmd, _, steps, chunk = EbmInference(m, 0.5, InferenceSettings(2, 8, 1e9), spec)(obs)
    assert torch.all(steps == 0)
    assert torch.allclose(chunk.reshape(16, -1), m.start.expand(16, -1))
    # energy_high = +inf: exactly `steps`; -inf: every sample goes on to max_steps
    _, _, s_low, _ = EbmInference(m, 0.5, InferenceSettings(2, 8, 0.0, math.inf), spec)(obs)
    _, _, s_high, _ = EbmInference(m, 0.5, InferenceSettings(2, 8, 0.0, -math.inf), spec)(obs)
    assert torch.all(s_low == 2) and torch.all(s_high == 8)
    assert torch.all(cmd[:, 0] >= spec.v_min) and torch.all(cmd[:, 0] <= spec.v_max)


def test_density_term_makes_the_energy_level_separate_data_from_corruptions(
        smoke_run: tuple[Path, Path, dict]) -> None:
    """The density term alone, on the smoke run's real observations: corruptions stay inside
    the codec's bounds and differ from their source, and after a few hundred updates the energy
    at the inferred action ranks fresh corruptions of held-out observations above those
    observations (AUROC), where the untrained model cannot (it starts near 0.5). Not near 1:
    by design a share of the corruptions is nearly the identity (sigma 0.05 on a few features,
    a few features swapped with a similar sample)."""
    from nav_policy.envs.registration import codec_specs
    from nav_policy.training.ebm_train import corrupt_observations, density_loss

    run, _, _ = smoke_run
    obs = torch.as_tensor(load_dataset(run / "dataset.npz")["obs"])
    low, high = (torch.as_tensor(b) for b in codec_specs({"sectors": 60})[0].bounds())
    train, held = obs[::2], obs[1::2]
    torch.manual_seed(0)
    m = EnergyModel(obs.shape[1], 4, [32, 32])
    m.set_normalisation(train.mean(0), train.std(0))
    bad = corrupt_observations(held, low, high, m.obs_std, 1.0, torch.Generator().manual_seed(9))
    assert torch.all(bad >= low) and torch.all(bad <= high)
    assert (bad != held).any(dim=1).float().mean() > 0.9

    def auroc() -> float:
        with torch.no_grad():
            inf = EbmInference(m, 0.5, InferenceSettings(2, 2, 0.0), ActionSpec())
            e_in, e_out = inf(held)[1], inf(bad)[1]
        return float((e_out[:, None] > e_in[None, :]).float().mean())

    before = auroc()
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(1)
    alpha = torch.tensor(0.5)
    for _ in range(300):
        feat = m.obs_features(train)
        a_hat = unroll(m, feat, alpha, 2)[-1]
        loss = density_loss(m, train, feat, a_hat, alpha, 2, low, high, 1.0, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert 0.3 < before < 0.7 and auroc() > 0.75, (before, auroc())


def test_collected_episode_counts_down_to_its_collision() -> None:
    """A driver that only goes straight ahead ends its episode in a wall: every state records
    the steps left to that collision; an episode that does not end in one records -1."""
    from nav_policy.training.ebm_config import TrainEbmConfig
    from nav_policy.training.ebm_data import run_expert_episode

    class Straight:  # a LocalPlanner: full speed ahead, whatever the sensors say
        def reset(self) -> None:
            pass

        def compute(self, frame: object) -> tuple[float, float]:
            return 0.5, 0.0

    cfg = TrainEbmConfig(env={"sectors": 60}, data={"expert": "dwa"})
    crashed = run_expert_episode(cfg, 0, "medium", 11, driver=Straight())
    n = len(crashed["obs"])
    assert crashed["to_collision"].tolist() == list(range(n - 1, -1, -1))
    clean = run_expert_episode(cfg.model_copy(update={"data": cfg.data.model_copy(
        update={"noise_std_max": 0.0, "perturb_prob": 0.0})}), 1, "easy", 12)
    assert np.all(clean["to_collision"] == -1)


def nav_policy_cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """`nav-policy ARGS` in a subprocess, as a user types it."""
    exe = str(Path(sys.executable).parent / "nav-policy")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


def cli_train_ebm(cfg: Path, runs: Path, *extra: str) -> Path:
    """`nav-policy train ebm --config CFG --runs RUNS EXTRA...`: must succeed; its run dir."""
    done = nav_policy_cli("train", "ebm", "--config", str(cfg), "--runs", str(runs), *extra)
    assert done.returncode == 0, done.stderr[-2000:]
    return Path(done.stderr.split("run directory: ")[-1].strip())


def cli_export(run: Path, out: Path, parity_samples: int) -> None:
    """`nav-policy export RUN --out OUT`: must succeed and report its parity check."""
    done = nav_policy_cli("export", str(run), "--out", str(out), "--parity-samples",
                          str(parity_samples))
    assert done.returncode == 0 and "parity max abs diff" in done.stderr, done.stderr[-2000:]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """The documented commands, as a user types them: train ebm, then export."""
    import json

    root = tmp_path_factory.mktemp("ebm")
    cfg = root / "ebm.yaml"
    cfg.write_text(SMOKE)
    run = cli_train_ebm(cfg, root / "runs")
    out = root / "local_ebm.onnx"
    cli_export(run, out, 400)
    from nav_policy.export.ebm_export import export_ebm_run

    report = export_ebm_run(run, root / "again.onnx", parity_samples=400)  # the same, as an API
    assert json.loads((run / "meta.json").read_text())["dataset"]["samples"] > 0
    return run, out, report


def test_collection_training_and_export_run_end_to_end(smoke_run: tuple[Path, Path, dict]
                                                       ) -> None:
    run, out, report = smoke_run
    data = load_dataset(run / "dataset.npz")
    assert data["obs"].shape[1] == 67 and len(data["obs"]) == len(data["act"]) > 20
    assert np.all(np.abs(data["act"]) <= 1.0) and set(np.unique(data["episode"])) == {0, 1}
    assert data["perturbed"].any()  # noise injection happened
    csv = (run / "eval.csv").read_text().splitlines()
    assert csv[0].startswith("epoch") and len(csv) == 4  # 2 epochs + 1 DAgger epoch
    dagger = load_dataset(run / "dataset_dagger1.npz")  # the model drove, the expert labelled
    assert len(dagger["act"]) > 0 and not dagger["perturbed"].any()
    assert set(np.unique(dagger["episode"])) == {100_000}
    assert ",1," in csv[-1]  # the last epoch trained in round 1
    assert (run / "best.pt").is_file() and (run / "checkpoints" / "last.pt").is_file()
    assert report["parity_max_abs_diff"] <= 1e-4 and report["parity_step_flips"] <= 2
    card = out.with_suffix(".md").read_text()
    assert "| seed | 3 |" in card and "Held-out evaluation" in card and "mppi" in card
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert props["nav_policy.kind"] == "ebm" and props["ebm.steps"] == "2"
    assert float(props["ebm.alpha"]) > 0 and math.isfinite(float(props["ebm.energy_high"]))


def test_onnx_matches_torch_k_step_inference(smoke_run: tuple[Path, Path, dict]) -> None:
    from nav_policy.export.ebm_export import build_inference

    run, out, _ = smoke_run
    module, _ = build_inference(run)
    rt = PolicyRuntime(out, expect_kind="ebm")
    low, high = rt.meta.obs_spec.bounds()
    obs = np.random.default_rng(5).uniform(low, high, size=(300, 67)).astype(np.float32)
    got = rt.run(obs)
    with torch.no_grad():
        ref = [t.numpy() for t in module(torch.as_tensor(obs))]
    same = got[2] == ref[2]  # an energy right on energy_high may gate differently in float32
    assert same.mean() >= 0.995
    assert np.max(np.abs(got[0][same] - ref[0][same])) <= 1e-4
    assert np.allclose(got[1][same], ref[1][same], rtol=1e-4, atol=1e-4)
    assert got[2].min() >= 0 and got[2].max() <= 8
    # the optional inputs select the number of steps in the same file
    sess = rt.session
    for k in (1, 4, 8):
        feeds = {"obs": obs, "steps": np.array(k, np.float32), "max_steps": np.array(k, np.float32)}
        cmd_k, _, used_k, _ = sess.run(None, feeds)
        with torch.no_grad():
            ref_k = module(torch.as_tensor(obs), torch.tensor(float(k)), torch.tensor(float(k)))
        assert used_k.max() <= k and np.array_equal(used_k, ref_k[2].numpy())
        assert np.max(np.abs(cmd_k - ref_k[0].numpy())) <= 1e-4


def test_proximity_features_and_momentum_train_and_export_with_parity(
        smoke_run: tuple[Path, Path, dict], tmp_path: Path) -> None:
    """model.features: proximity and train.momentum, as a user runs them (the smoke run's
    dataset reused): the features are inside the model (a first layer over 67 + 60 inputs,
    exp(-(r - range_min) / scale) of the sectors), momentum is in the inference settings and
    the metadata, and the exported graph's output matches torch."""
    from nav_policy.export.ebm_export import build_inference

    run0, _, _ = smoke_run
    cfg = tmp_path / "prox.yaml"
    cfg.write_text(SMOKE.replace("hidden: [32, 32]}", "hidden: [32, 32], features: proximity, "
                                 "proximity_scale: 0.3}").replace("dagger_rounds: 1", "dagger_rounds: 0")
                   .replace("train: {epochs: 2,", "train: {epochs: 2, momentum: 0.5,"))
    run = cli_train_ebm(cfg, tmp_path / "runs", "--dataset", str(run0 / "dataset.npz"),
                        "--epochs", "1")
    out = tmp_path / "prox.onnx"
    cli_export(run, out, 300)
    module, _ = build_inference(run)
    m = module.model
    assert m.obs_in.in_features == 67 + 60 and m.proximity_scale == 0.3
    assert module.s.momentum == 0.5
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert props["ebm.momentum"] == "0.5" and "Nesterov momentum 0.5" in out.with_suffix(".md").read_text()
    obs = torch.as_tensor(load_dataset(run0 / "dataset.npz")["obs"][:64])
    near = obs.clone()
    near[:, 10] = m.range_min + 0.05  # one sector nearly touching: its feature is exp(-0.05/0.3)
    x = torch.cat([(near - m.obs_mean) / m.obs_std, torch.exp(-(near[:, :60] - m.range_min) / 0.3)], 1)
    with torch.no_grad():
        assert torch.allclose(m.obs_features(near), m.obs_in(x), atol=1e-5)
        ref = module(near)
    got = PolicyRuntime(out, expect_kind="ebm").run(near.numpy())
    same = got[2] == ref[2].numpy()
    assert same.mean() >= 0.95 and np.max(np.abs(got[0][same] - ref[0].numpy()[same])) <= 1e-4


def test_collect_only_writes_the_demonstrations_and_stops(tmp_path: Path) -> None:
    """`train ebm --collect-only`: the dataset (for rl's bc_init.dataset) and no training;
    --resume then trains on that run's dataset. On a local run the flag is refused (exit 2)."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(SMOKE.replace("episodes: 2,", "episodes: 1,").replace("dagger_rounds: 1",
                                                                          "dagger_rounds: 0"))
    one = cli_train_ebm(cfg, tmp_path / "r", "--collect-only")  # one episode: collects fine ...
    assert len(load_dataset(one / "dataset.npz")["act"]) > 10
    assert not (one / "best.pt").exists() and not (one / "eval.csv").exists()
    done = nav_policy_cli("train", "ebm", "--resume", str(one))  # ... but cannot be split
    assert done.returncode == 2 and "training needs at least 2" in done.stderr, done.stderr[-800:]
    cfg.write_text(SMOKE.replace("dagger_rounds: 1", "dagger_rounds: 0"))
    run = cli_train_ebm(cfg, tmp_path / "r", "--collect-only")
    collected = load_dataset(run / "dataset.npz")["act"]
    done = nav_policy_cli("train", "ebm", "--resume", str(run), "--epochs", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    assert (run / "best.pt").is_file() and len((run / "eval.csv").read_text().splitlines()) == 2
    assert np.array_equal(load_dataset(run / "dataset.npz")["act"], collected)  # not recollected
    bad = nav_policy_cli("train", "local", "--config", str(cfg), "--collect-only", timeout=120)
    assert bad.returncode == 2 and "--collect-only applies to ebm" in bad.stderr


def test_export_holds_max_steps_iterations(smoke_run: tuple[Path, Path, dict],
                                           tmp_path: Path) -> None:
    """--max-steps sets the iterations in the graph (each costs compute on every call); the
    planner refuses settings the file cannot run, naming it."""
    from nav_policy.export.ebm_export import build_inference, export_ebm_run

    run, out8, _ = smoke_run
    out4 = tmp_path / "k4.onnx"
    export_ebm_run(run, out4, parity_samples=200, steps=2, max_steps=4)
    p4 = {p.key: p.value for p in onnx.load(str(out4)).metadata_props}
    p8 = {p.key: p.value for p in onnx.load(str(out8)).metadata_props}
    assert (p4["ebm.iterations"], p8["ebm.iterations"]) == ("4", "8")
    assert len(onnx.load(str(out4)).graph.node) < 0.7 * len(onnx.load(str(out8)).graph.node)
    module, _ = build_inference(run, steps=2, max_steps=4)
    obs = np.random.default_rng(6).uniform(-1, 3, size=(50, 67)).astype(np.float32)
    sess = PolicyRuntime(out4, expect_kind="ebm").session
    for k in (1, 4):
        feeds = {"obs": obs, "steps": np.array(k, np.float32), "max_steps": np.array(k, np.float32)}
        cmd_k, _, used_k, _ = sess.run(None, feeds)
        with torch.no_grad():
            ref = module(torch.as_tensor(obs), torch.tensor(float(k)), torch.tensor(float(k)))
        assert np.array_equal(used_k, ref[2].numpy()) and used_k.max() <= k
        assert np.max(np.abs(cmd_k - ref[0].numpy())) <= 1e-4
    assert PolicyPlanner.from_file(out4, expect_kind="ebm", steps=4, max_steps=4).iterations == 4
    with pytest.raises(ModelError, match="holds 4 gradient iterations"):
        PolicyPlanner.from_file(out4, expect_kind="ebm", max_steps=8)
    with pytest.raises(ConfigError, match="max_steps"):
        export_ebm_run(run, tmp_path / "bad.onnx", steps=5, max_steps=4)
    assert not (tmp_path / "bad.onnx").exists()


def test_rl_expert_labels_are_the_shipped_policy_on_the_env_observation(tmp_path: Path) -> None:
    """expert: rl labels each state with the exported rl policy applied to the env's own codec
    observation (what it was trained on); DART noise still perturbs what is executed."""
    from nav_policy.codecs import encode_action
    from nav_policy.training.ebm_data import collect

    cfg = tmp_path / "rl.yaml"
    cfg.write_text("seed: 4\nenv: {motion_mode: kinematic, control_hz: 10.0, sectors: 60}\n"
                   "data: {expert: rl, episodes: 2, workers: 1, tiers: {easy: 1.0}}\n")
    c = load_ebm_config(cfg)
    report = collect(c, tmp_path / "d.npz", progress=False)
    data = load_dataset(tmp_path / "d.npz")
    assert report["samples"] == len(data["act"]) > 20 and str(data["expert"]) == "rl"
    rt = PolicyRuntime(c.data.expert_model, expect_kind="rl")
    want = np.array([encode_action(*rt.act(o), ActionSpec()) for o in data["obs"]])
    assert np.allclose(data["act"], want, atol=1e-5)
    assert data["perturbed"].any() and not np.allclose(data["executed"], data["act"])
    cfg.write_text("data: {expert: rl, expert_model: models/local_ebm.onnx}\n")
    with pytest.raises(ModelError, match="local_ebm.onnx"):  # an ebm file is not an rl expert
        collect(load_ebm_config(cfg), tmp_path / "e.npz", progress=False)


def _with_meta(src: Path, dst: Path, value: str, key: str = "ebm.energy_high") -> Path:
    model = onnx.load(str(src))
    for p in model.metadata_props:
        if p.key == key:
            p.value = value
    onnx.save(model, str(dst))
    return dst


def test_energy_gate_caps_speed_only_when_on(smoke_run: tuple[Path, Path, dict],
                                             tmp_path: Path) -> None:
    import gymnasium as gym

    import nav_policy  # noqa: F401

    _, out, _ = smoke_run
    always_high = _with_meta(out, tmp_path / "high.onnx", "-1e30")
    env = gym.make("nav_policy/LocalNav-v0")
    env.reset(seed=0, options={"tier": "easy", "world_seed": 0})
    frame = env.unwrapped.sensors()
    env.close()
    gated = PolicyPlanner.from_file(always_high, expect_kind="ebm", energy_speed_factor=0.2)
    free = PolicyPlanner.from_file(always_high, expect_kind="ebm", energy_gate=False)
    vg, _ = gated.compute(frame)
    vf, _ = free.compute(frame)
    assert gated.last_info["high_energy"] and math.isfinite(gated.last_info["energy"])
    assert vg <= 0.2 * 0.5 + 1e-6
    assert vg == pytest.approx(min(vf, 0.1), abs=1e-6)


def test_bad_inputs_are_clear_errors(tmp_path: Path, smoke_run: tuple[Path, Path, dict]) -> None:
    from nav_policy.planners import make_planner

    bad = tmp_path / "d.npz"
    bad.write_bytes(b"not an npz")
    with pytest.raises(ConfigError, match="cannot read dataset"):
        load_dataset(bad)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train: {k_min: 5, k_max: 2}\n")
    with pytest.raises(ConfigError, match="k_min"):
        load_ebm_config(cfg)
    cfg.write_text("train: {momentum: 1.0}\n")  # mu must be in [0, 1)
    with pytest.raises(ConfigError, match="momentum"):
        load_ebm_config(cfg)
    cfg.write_text("data: {tiers: {lava: 1.0}}\n")
    with pytest.raises(ConfigError, match="lava"):
        load_ebm_config(cfg)
    # DAgger round 6 from world seed 300000 would drive the held-out evaluation worlds (900000+)
    cfg.write_text("data: {world_seed: 300000, dagger_rounds: 6}\n")
    with pytest.raises(ConfigError, match="DAgger round 6 would use world seeds 900000"):
        load_ebm_config(cfg)
    cfg.write_text("data: {world_seed: 300000, dagger_rounds: 5}\n")  # 800000..: clear of them
    assert load_ebm_config(cfg).data.dagger_rounds == 5
    cfg.write_text("data: {world_seed: 899990}\n")  # the expert's own episodes, too
    with pytest.raises(ConfigError, match="the expert's episodes"):
        load_ebm_config(cfg)
    with pytest.raises(ConfigError, match="unknown ebm parameter"):
        make_planner("ebm", model=smoke_run[1], temperature=3)
    with pytest.raises(ModelError, match="energy_speed_factor"):
        PolicyPlanner.from_file(smoke_run[1], expect_kind="ebm", energy_speed_factor=2.0)
    # an rl model is refused where an ebm is expected, naming the file
    broken = _with_meta(smoke_run[1], tmp_path / "nan.onnx", "garbage")
    with pytest.raises(ModelError, match="ebm.energy_high"):
        PolicyPlanner.from_file(broken, expect_kind="ebm")
    iters = _with_meta(smoke_run[1], tmp_path / "iters.onnx", "eight", key="ebm.iterations")
    with pytest.raises(ModelError, match="ebm.iterations"):
        PolicyPlanner.from_file(iters, expect_kind="ebm")


def test_rl_behaviour_cloning_init_uses_the_demonstrations(smoke_run: tuple[Path, Path, dict],
                                                           tmp_path: Path) -> None:
    """train local with bc_init: the actor is cloned from the ebm run's datasets (expert and
    DAgger rounds together) before PPO, the cloned policy is evaluated at step 0, and during the
    critic warm-up only the value network learns."""
    import json

    from stable_baselines3 import PPO

    from nav_policy.paths import config_path
    from nav_policy.training.local_rl import train_local

    run_dir, _, _ = smoke_run
    files = [str(run_dir / "dataset.npz"), str(run_dir / "dataset_dagger1.npz")]
    samples = sum(len(load_dataset(f)["act"]) for f in files)
    common = {"total_steps": 256, "n_envs": 1, "vec_env": "dummy", "checkpoint_every_steps": 256,
              "ppo": {"n_steps": 128, "batch_size": 64, "n_epochs": 1},
              "eval": {"episodes_per_tier": 1, "every_steps": 100_000, "tiers": ["easy"]}}
    logs_std = {}
    for warmup in (1_000, 0):  # 1,000: frozen through both updates
        run = train_local(config_path("train_local_bc.yaml"), runs_root=tmp_path, overrides={
            **common, "bc_init": {"dataset": files, "epochs": 3, "log_std": -1.5,
                                  "critic_warmup_steps": warmup}})
        meta = json.loads((run / "meta.json").read_text())
        assert meta["bc_init"]["samples"] == samples and meta["bc_init"]["dataset"] == files
        assert meta["bc_init"]["final_mse"] < 0.8 * meta["bc_init"]["initial_mse"]
        assert (run / "eval.csv").read_text().splitlines()[1].startswith("0,easy,")
        model = PPO.load(run / "checkpoints" / "step_256.zip", device="cpu")
        logs_std[warmup] = model.policy.log_std.detach().numpy()
    # two PPO updates: the actor's log std moved without the warm-up, not with it
    assert np.all(logs_std[1_000] == np.float32(-1.5))
    assert np.abs(logs_std[0] + 1.5).max() > 1e-6
    with pytest.raises(ConfigError, match="bc_init needs algo ppo"):
        train_local(config_path("train_local_bc.yaml"), runs_root=tmp_path,
                    overrides={"algo": "sac"})


def test_risky_states_are_negatives_and_crash_actions_are_pushed_up() -> None:
    """density_loss with a risk mask moves those states from the positives to the negatives
    (a batch of risky states only stays finite); a few steps on crash_action_loss raise the
    energy of the executed chunk above the expert's at those states."""
    from nav_policy.training.ebm_train import crash_action_loss, density_loss

    torch.manual_seed(4)
    m = EnergyModel(6, 2, [16, 16])
    obs = torch.rand(32, 6)
    low, high = torch.zeros(6), torch.ones(6)
    alpha = torch.tensor(0.5)
    feat = m.obs_features(obs)
    a_hat = unroll(m, feat, alpha, 2)[-1]

    def loss(risky: torch.Tensor | None) -> torch.Tensor:
        return density_loss(m, obs, feat, a_hat, alpha, 2, low, high, 1.0,
                            torch.Generator().manual_seed(0), risky)

    none, some = torch.zeros(32, dtype=torch.bool), torch.arange(32) < 8
    assert torch.isclose(loss(none), loss(None))
    assert not torch.isclose(loss(some), loss(None))
    assert torch.isfinite(loss(torch.ones(32, dtype=torch.bool)))
    expert = torch.rand(32, 4) * 2 - 1
    executed = torch.clamp(expert + 0.8, -1, 1)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(50):
        c = crash_action_loss(m, m.obs_features(obs), expert, executed)
        opt.zero_grad()
        c.backward()
        opt.step()
    with torch.no_grad():
        f = m.obs_features(obs)
        assert (m.energy(f, executed) > m.energy(f, expert)).float().mean() > 0.9


def test_crash_action_term_needs_risk_steps() -> None:
    from nav_policy.training.ebm_config import TrainEbmConfig

    with pytest.raises(ValueError, match="crash_action_weight needs train.risk_steps"):
        TrainEbmConfig(train={"density_weight": 0.1, "crash_action_weight": 0.1})
    with pytest.raises(ValueError, match="risk_steps is used only with"):
        TrainEbmConfig(train={"risk_steps": 10})
    with pytest.raises(ValueError, match="density_sigma_max"):
        TrainEbmConfig(train={"density_weight": 0.1, "density_sigma_max": 0.01})


def test_every_shipped_training_config_validates() -> None:
    """The recipes in config/ (shipped model, ablations, experiments) all load as written."""
    from nav_policy.paths import config_path, model_path
    from nav_policy.training.config import load_config

    root = config_path("train_ebm.yaml").parent
    research = root.parent / "experiments" / "configs"  # the recipes tried along the way
    ebm = sorted([*root.glob("train_ebm*.yaml"), *research.glob("train_ebm*.yaml")])
    local = sorted([*root.glob("train_local*.yaml"), *research.glob("train_local*.yaml")])
    assert len(ebm) >= 5 and len(local) >= 5
    for f in ebm:
        cfg = load_ebm_config(f)
        assert cfg.inference.steps <= cfg.inference.max_steps
    for f in local:
        load_config(f)
    shipped = load_ebm_config(root / "train_ebm_proximity.yaml")  # models/local_ebm.md's command
    assert shipped.data.expert == "rl" and shipped.inference.max_steps == 4
    assert shipped.train.density_weight > 0 and shipped.train.risk_steps > 0
    assert shipped.model.features == "proximity"
    assert "config/train_ebm_proximity.yaml" in model_path("local_ebm.md").read_text()
    rl = load_config(root / "train_local_proximity.yaml")  # models/local_rl.md's command
    assert rl.policy_features == "proximity" and rl.bc_init is not None
    assert "config/train_local_proximity.yaml" in model_path("local_rl.md").read_text()
