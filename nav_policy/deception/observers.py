"""Goal-recognition observers: P(goal | observed path prefix) for every candidate goal.

Both observers work from the cost difference of docs/DESIGN.md (Masters & Sardina 2017's simple
form of Ramirez & Geffner 2010)::

    costdif(s, g, n) = optc(n, g) - optc(s, g)

where n is the last observed node (M&S show the prefix can be summarised by it).

* ``costdif`` (Ramirez & Geffner / Masters & Sardina):
  P(g | n) ∝ P(g) · e^{-β·costdif} / (1 + e^{-β·costdif})
* ``boltzmann`` (value-based, noisy-rational observer):
  P(g | n) ∝ P(g) · e^{-β·costdif}

β is in 1/cost units. Callers that want a scale-free observer pass β = b / median edge
weight (see :func:`scaled_beta`), so grids with unit steps and geometric graphs in the unit
square are judged alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import expit, logsumexp

ObserverKind = Literal["costdif", "boltzmann"]


def costdif(dist_to_goals: np.ndarray, start: int, nodes: np.ndarray | int | None = None
            ) -> np.ndarray:
    """costdif(s, g, n) for every goal row of `dist_to_goals` (k, n_nodes).

    Returns (k,) for one node, (k, len(nodes)) for an array, (k, n_nodes) when nodes is None.
    """
    base = dist_to_goals[:, start]
    if nodes is None:
        return dist_to_goals - base[:, None]
    if np.ndim(nodes) == 0:
        return dist_to_goals[:, int(nodes)] - base  # type: ignore[arg-type]
    return dist_to_goals[:, np.asarray(nodes)] - base[:, None]


def scaled_beta(beta_per_edge: float, median_edge: float) -> float:
    """β in 1/cost units from a β expressed per typical edge."""
    return float(beta_per_edge) / max(float(median_edge), 1e-12)


def _log_priors(k: int, priors: np.ndarray | None) -> np.ndarray:
    if priors is None:
        return np.zeros(k)
    p = np.asarray(priors, dtype=float)
    if p.shape != (k,) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError(f"priors must be {k} non-negative numbers with a positive sum")
    with np.errstate(divide="ignore"):
        return np.log(p / p.sum())


def costdif_probabilities(cd: np.ndarray, beta: float, priors: np.ndarray | None = None
                          ) -> np.ndarray:
    """Masters & Sardina / Ramirez & Geffner posterior over goals (axis 0 of `cd`)."""
    cd = np.asarray(cd, dtype=float)
    like = expit(-beta * cd)  # e^{-βc} / (1 + e^{-βc}), overflow-safe
    with np.errstate(divide="ignore"):
        logp = np.log(like) + _log_priors(cd.shape[0], priors).reshape(
            (-1,) + (1,) * (cd.ndim - 1))
    return np.exp(logp - logsumexp(logp, axis=0, keepdims=True))


def boltzmann_probabilities(cd: np.ndarray, beta: float, priors: np.ndarray | None = None
                            ) -> np.ndarray:
    """Boltzmann (softmax over -β·costdif) posterior over goals (axis 0 of `cd`)."""
    cd = np.asarray(cd, dtype=float)
    logp = -beta * cd + _log_priors(cd.shape[0], priors).reshape((-1,) + (1,) * (cd.ndim - 1))
    return np.exp(logp - logsumexp(logp, axis=0, keepdims=True))


@dataclass(frozen=True)
class Observer:
    """An observer that watches the path and infers the goal.

    Goals are the rows of the distance matrix it is given: by convention row 0 is the true
    goal and the others are the decoys.
    """

    kind: ObserverKind = "costdif"
    beta: float = 1.0
    priors: tuple[float, ...] | None = None

    def probabilities(self, cd: np.ndarray) -> np.ndarray:
        """P(g | n) from costdif values (k,) or (k, m)."""
        pri = None if self.priors is None else np.asarray(self.priors)
        if self.kind == "costdif":
            return costdif_probabilities(cd, self.beta, pri)
        if self.kind == "boltzmann":
            return boltzmann_probabilities(cd, self.beta, pri)
        raise ValueError(f"unknown observer kind {self.kind!r}")

    def path_probabilities(self, dist_to_goals: np.ndarray, start: int,
                           path: list[int] | np.ndarray) -> np.ndarray:
        """(len(path), k): P(g | prefix ending at path[t]) for every prefix."""
        cd = costdif(dist_to_goals, start, np.asarray(path, dtype=np.int64))
        return self.probabilities(cd).T


__all__ = ["Observer", "ObserverKind", "boltzmann_probabilities", "costdif",
           "costdif_probabilities", "scaled_beta"]
