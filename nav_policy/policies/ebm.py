"""Energy model E(o, a) over an action chunk, its analytic action gradient, and the K-step
inference that is exported to ONNX whole (one ORT call per control step on the robot).

    E(o, a) = w_L . silu(W_{L-1} ... silu(W_o o_n + W_a a + b_1) ...) + b_L
    o_n = (o - mean) / std          (dataset statistics, inside the model)
          with proximity features also exp(-max(r - range_min, 0) / scale) per lidar sector
          appended (nav_policy/policies/features.py says why; model.features in the config)
    a   = chunk of H (v, w) steps, normalised to [-1, 1], flattened to 2H

Inference (docs/DESIGN.md): a_0 = a learned start; a_{k+1} = clip(a_k - alpha * grad_a E(o, a_k), -1, 1)
(with Nesterov momentum mu > 0: g_k = grad_a E(o, a_k + mu * u_k), a_{k+1} = clip(a_k + mu * u_k -
alpha * g_k, -1, 1), u_{k+1} = a_{k+1} - a_k, u_0 = 0; the same in training and in the graph)
for k < steps, each sample stopping early once ||grad_a E|| < eps; where the energy after
`steps` is above `energy_high`, more steps run up to `max_steps` (dynamic compute). The gradient
is written out by hand (`energy_and_grad`), so tracing for ONNX needs no autograd; training
differentiates through the same function (second-order gradients through the unroll), and a test
proves it equal to torch autograd.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from nav_policy.codecs import ActionSpec, decode_action
from nav_policy.policies.features import proximity


def silu_grad(z: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(z)
    return s * (1.0 + z * (1.0 - s))


class EnergyModel(nn.Module):
    """E(o, a): an MLP with SiLU activations; the first layer is split so the observation part
    is computed once per inference, not once per step."""

    def __init__(self, obs_dim: int, horizon: int, hidden: list[int],
                 proximity_sectors: int = 0, proximity_scale: float = 0.25,
                 range_min: float = 0.0) -> None:
        super().__init__()
        if not hidden:
            raise ValueError("EnergyModel needs at least one hidden layer")
        if not 0 <= proximity_sectors < obs_dim or proximity_scale <= 0:
            raise ValueError(f"proximity features need 0 <= sectors < {obs_dim} and scale > 0, "
                             f"got {proximity_sectors}, {proximity_scale}")
        self.obs_dim, self.horizon, self.act_dim = obs_dim, horizon, 2 * horizon
        self.proximity_sectors, self.proximity_scale = int(proximity_sectors), float(proximity_scale)
        self.range_min = float(range_min)
        self.register_buffer("obs_mean", torch.zeros(obs_dim))
        self.register_buffer("obs_std", torch.ones(obs_dim))
        self.obs_in = nn.Linear(obs_dim + self.proximity_sectors, hidden[0])
        self.act_in = nn.Linear(self.act_dim, hidden[0], bias=False)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(hidden[:-1], hidden[1:]))
        self.out = nn.Linear(hidden[-1], 1)
        self.start = nn.Parameter(torch.zeros(self.act_dim))  # learned a_0

    def set_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.obs_mean.copy_(mean)
        self.obs_std.copy_(torch.clamp(std, min=1e-3))

    def obs_features(self, obs: torch.Tensor) -> torch.Tensor:
        """The observation's share of the first pre-activation (computed once)."""
        x = (obs - self.obs_mean) / self.obs_std
        if self.proximity_sectors:
            s = self.proximity_sectors
            x = torch.cat([x, proximity(obs[:, :s], self.range_min, self.proximity_scale)], dim=1)
        return self.obs_in(x)

    def energy(self, feat: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        h = torch.nn.functional.silu(feat + self.act_in(a))
        for layer in self.hidden:
            h = torch.nn.functional.silu(layer(h))
        return self.out(h).squeeze(-1)

    def energy_and_grad(self, feat: torch.Tensor, a: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """E (N,) and dE/da (N, 2H) by an explicit backward pass through the MLP."""
        zs = [feat + self.act_in(a)]
        h = torch.nn.functional.silu(zs[0])
        for layer in self.hidden:
            zs.append(layer(h))
            h = torch.nn.functional.silu(zs[-1])
        e = self.out(h).squeeze(-1)
        g = self.out.weight.expand(a.shape[0], -1)  # dE/dh_L, (N, d_L)
        for k in range(len(self.hidden), 0, -1):
            g = (g * silu_grad(zs[k])) @ self.hidden[k - 1].weight
        g = (g * silu_grad(zs[0])) @ self.act_in.weight
        return e, g

    def forward(self, obs: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self.energy(self.obs_features(obs), a)


@dataclass(frozen=True)
class InferenceSettings:
    steps: int = 2
    max_steps: int = 8
    grad_eps: float = 1e-3
    energy_high: float = math.inf  # energy above which steps beyond `steps` run
    momentum: float = 0.0  # Nesterov momentum mu of the descent (train.momentum of the run)


def unroll(model: EnergyModel, feat: torch.Tensor, alpha: torch.Tensor, k: int,
           noise_std: float = 0.0, momentum: float = 0.0) -> list[torch.Tensor]:
    """Training-time unroll: [a_1, ..., a_k] from the learned start, differentiable
    (Langevin noise `noise_std` on each step, training only; Nesterov `momentum` as in the
    module docstring)."""
    a = model.start.expand(feat.shape[0], -1)
    u = torch.zeros_like(a)
    out = []
    for _ in range(k):
        ahead = a + momentum * u if momentum else a
        _, g = model.energy_and_grad(feat, ahead)
        nxt = ahead - alpha * g
        if noise_std > 0:
            nxt = nxt + noise_std * torch.randn_like(nxt)
        nxt = torch.clamp(nxt, -1.0, 1.0)
        u, a = nxt - a, nxt
        out.append(a)
    return out


STEP_CAP = 8  # most unrolled iterations an exported graph may hold


class EbmInference(nn.Module):
    """The exported graph: raw codec observation -> (cmd (N, 2) SI of the chunk's first step,
    energy (N,), steps used (N,), chunk (N, H, 2) normalised).

    `steps` and `max_steps` are optional scalar inputs (float tensors; defaults from the
    settings, stored in the ONNX file as overridable initialisers): iteration k applies where
    k < steps, or where k < max_steps and the energy at iteration `steps` was above
    energy_high; a sample stops for good once ||grad E|| < grad_eps. The graph holds
    `settings.max_steps` iterations (at most STEP_CAP), always computed and masked, so one graph
    serves every setting up to its own max_steps: a larger max_steps input cannot add
    iterations (PolicyPlanner refuses it), and each iteration costs compute on every call.
    """

    def __init__(self, model: EnergyModel, alpha: float, settings: InferenceSettings,
                 action_spec: ActionSpec) -> None:
        super().__init__()
        if not 0 <= settings.steps <= settings.max_steps <= STEP_CAP:
            raise ValueError(f"need 0 <= steps <= max_steps <= {STEP_CAP}: {settings}")
        self.model = model
        self.alpha = float(alpha)
        self.s = settings
        self.iterations = settings.max_steps
        self.action_spec = action_spec

    def defaults(self) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.tensor(float(self.s.steps)), torch.tensor(float(self.s.max_steps)))

    def forward(self, obs: torch.Tensor, steps: torch.Tensor | None = None,
                max_steps: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        m = self.model
        d_steps, d_max = self.defaults()
        steps = d_steps if steps is None else steps.reshape(())
        max_steps = d_max if max_steps is None else max_steps.reshape(())
        feat = m.obs_features(obs)
        n = obs.shape[0]
        a = m.start.unsqueeze(0).repeat(n, 1)
        u = torch.zeros_like(a)  # last step taken (Nesterov momentum; stays 0 when mu = 0)
        mu = self.s.momentum
        moving = torch.ones(n, 1, dtype=obs.dtype)  # 0 once the gradient norm fell below eps
        high = torch.ones(n, 1, dtype=obs.dtype)  # energy at iteration `steps` above energy_high
        used = torch.zeros(n, dtype=obs.dtype)
        for k in range(self.iterations):
            ahead = a + mu * u if mu else a
            e, g = m.energy_and_grad(feat, ahead)
            kk = torch.tensor(float(k))
            is_gate = (steps == kk).to(obs.dtype)
            high = is_gate * (e > self.s.energy_high).to(obs.dtype).unsqueeze(-1) \
                + (1.0 - is_gate) * high
            gnorm = torch.sqrt((g * g).sum(-1, keepdim=True))
            moving = moving * (gnorm >= self.s.grad_eps).to(obs.dtype)
            within = torch.clamp((kk < steps).to(obs.dtype)
                                 + (kk < max_steps).to(obs.dtype) * high, 0.0, 1.0)
            apply = within * moving
            if mu:
                nxt = torch.clamp(ahead - self.alpha * g, -1.0, 1.0)
                nxt = apply * nxt + (1.0 - apply) * a
                u, a = nxt - a, nxt
            else:
                a = torch.clamp(a - self.alpha * g * apply, -1.0, 1.0)
            used = used + apply.squeeze(-1)
        e = m.energy(feat, a)
        cmd = decode_action(a[:, :2], self.action_spec)  # the shared action codec
        return cmd, e, used, a.reshape(n, m.horizon, 2)
