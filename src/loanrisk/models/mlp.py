"""A small multilayer perceptron trained with torch; its ONNX graph is written by hand.

torch is imported here and in ``models.train`` only, and this module only when an mlp is built:
serving runs the ONNX graph (Gemm + Relu per layer, then Softmax or Sigmoid) with onnxruntime.
Binary targets use ONE logit: BCE-with-logits in training, one sigmoid at prediction time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from loanrisk.errors import DataError
from loanrisk.models.train import MLPConfig, build_network, class_weights, make_loss, resolve_device
from loanrisk.models.train import train as train_loop


def _config(base: MLPConfig | None, seed: int, overrides: dict[str, Any]) -> MLPConfig:
    """``base`` (or the defaults) with ``seed`` and ``overrides``; ValueError on unknown names."""
    names = {f.name for f in dataclasses.fields(MLPConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"unknown mlp option(s) {unknown}; valid: {sorted(names)}")
    for key in ("hidden", "dropout"):  # JSON and CLI hand over lists
        if key in overrides:
            overrides[key] = tuple(overrides[key])
    cfg = dataclasses.replace(base or MLPConfig(), seed=seed, **overrides)
    if cfg.imbalance not in ("class_weights", "sampler", "none"):
        raise ValueError(f"imbalance must be 'class_weights', 'sampler' or 'none', "
                         f"not {cfg.imbalance!r}")
    if cfg.loss not in ("ce", "focal"):
        raise ValueError(f"loss must be 'ce' or 'focal', not {cfg.loss!r}")
    return cfg


class MLPModel:
    """The reference network: 128-64-32-16 ReLU with dropout, AdamW, early stopping."""

    name = "mlp"

    def __init__(self, *, seed: int = 42, task: str = "multiclass",
                 config: MLPConfig | None = None,
                 on_epoch: Callable[[int, dict[str, float]], None] | None = None,
                 **overrides: Any) -> None:
        if task not in ("binary", "multiclass"):
            raise ValueError(f"task must be 'binary' or 'multiclass', not {task!r}")
        self.seed = seed
        self.task = task
        self.config = _config(config, seed, dict(overrides))
        self.on_epoch = on_epoch  # per-epoch hook (tuning); not a hyperparameter
        self.history_: dict[str, list[float]] | None = None

    def fit(self, X: np.ndarray, y: np.ndarray, *, X_val: np.ndarray, y_val: np.ndarray,
            n_classes: int) -> MLPModel:
        """Train on float32 X and int class indices y, early-stopping on (X_val, y_val).

        Returns self. Raises DataError when the training labels hold a single class, and
        ValueError when a binary task is given other than two classes.
        """
        cfg = self.config
        y = np.asarray(y, dtype=np.int64)
        if np.unique(y).size < 2:
            raise DataError("the training rows hold a single class; a classifier needs two")
        if self.task == "binary" and n_classes != 2:
            raise ValueError(f"a binary task needs n_classes=2, not {n_classes}")
        self.n_classes_ = int(n_classes)
        self.n_features_ = int(X.shape[1])
        n_out = 1 if self.task == "binary" else self.n_classes_
        device = resolve_device(cfg.device)
        old_threads = torch.get_num_threads()
        old_det = torch.are_deterministic_algorithms_enabled()
        # fork_rng: seeding for determinism leaves the caller's global RNG as it was
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(cfg.seed)  # Xavier init and dropout masks
            if cfg.threads:
                torch.set_num_threads(cfg.threads)
            if device.type == "cpu":  # free on CPU; on CUDA it would need a cuBLAS workspace
                torch.use_deterministic_algorithms(True)
            try:
                net = build_network(self.n_features_, n_out, cfg).to(device)
                Xt, yt = _tensor(X, device), torch.as_tensor(y, device=device)
                Xv = _tensor(X_val, device)
                yv = torch.as_tensor(np.asarray(y_val, dtype=np.int64), device=device)
                w = class_weights(y, self.n_classes_, power=cfg.class_weight_power).to(device)
                sample_w = None
                if cfg.imbalance == "sampler":  # inverse frequency draw, unweighted loss
                    sample_w = class_weights(y, self.n_classes_, power=1.0)[torch.as_tensor(y)]
                loss_fn = make_loss(cfg, n_outputs=n_out,
                                    weights=w if cfg.imbalance == "class_weights" else None)
                result = train_loop(net, Xt, yt, X_val=Xv, y_val=yv, loss_fn=loss_fn,
                                    config=cfg, sample_weights=sample_w,
                                    on_epoch=self.on_epoch)
            finally:
                torch.set_num_threads(old_threads)
                torch.use_deterministic_algorithms(old_det)
        self.net_ = net.cpu().eval()
        self.class_weights_ = w.cpu().numpy().astype(np.float64)
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.epochs_run_ = result.epochs_run
        self.train_seconds_ = result.seconds
        self.samples_per_s_ = result.samples_per_s
        return self

    @torch.no_grad()
    def logits(self, X: np.ndarray) -> np.ndarray:
        """Raw network outputs (n, 1) for binary or (n, n_classes), float64, dropout off."""
        self.net_.eval()
        Xt = _tensor(X, torch.device("cpu"))
        out = [self.net_(Xt[i:i + 65536]) for i in range(0, len(Xt), 65536)]
        return torch.cat(out).double().numpy()

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probabilities (n, n_classes) float64: softmax, or [1 - p, p] with p = sigmoid(logit)."""
        z = self.logits(X)
        if z.shape[1] == 1:
            p = 1.0 / (1.0 + np.exp(-z))  # the one and only sigmoid
            return np.hstack([1.0 - p, p])
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def linear_layers(self) -> list[nn.Linear]:
        """The Linear layers in order (dropout and ReLU carry no weights)."""
        return [m for m in self.net_ if isinstance(m, nn.Linear)]

    def to_onnx(self, n_features: int) -> onnx.ModelProto:
        """Graph "features" [N,F] -> "probabilities" [N,C]: Gemm+Relu per layer, then the link.

        Dropout is the identity at inference and is left out. Raises ValueError when
        ``n_features`` differs from the width the network was trained on.
        """
        from onnx import helper

        from loanrisk.onnx_utils import FEATURES, PROBABILITIES, const, float_input, make_model

        if n_features != self.n_features_:
            raise ValueError(f"the network takes {self.n_features_} features, not {n_features}")
        layers = self.linear_layers()
        inits, nodes, x = [], [], FEATURES
        for i, lin in enumerate(layers):
            # Gemm: x (N, in) @ W.T (in, out) + b; transB=1 keeps torch's (out, in) layout
            inits += [const(f"W{i}", lin.weight.detach().numpy()),
                      const(f"b{i}", lin.bias.detach().numpy())]
            nodes.append(helper.make_node("Gemm", [x, f"W{i}", f"b{i}"], [f"z{i}"], transB=1))
            x = f"z{i}"
            if i < len(layers) - 1:
                nodes.append(helper.make_node("Relu", [x], [f"h{i}"]))
                x = f"h{i}"
        if self.task == "binary":  # one logit -> p = sigmoid, probabilities [1 - p, p]
            inits.append(const("one", [[1.0]]))
            nodes += [helper.make_node("Sigmoid", [x], ["p"]),
                      helper.make_node("Sub", ["one", "p"], ["q"]),
                      helper.make_node("Concat", ["q", "p"], [PROBABILITIES], axis=1)]
        else:
            nodes.append(helper.make_node("Softmax", [x], [PROBABILITIES], axis=1))
        return make_model(nodes, name="mlp", inputs=[float_input(FEATURES, n_features)],
                          outputs=[float_input(PROBABILITIES, self.n_classes_)],
                          initializers=inits, doc=f"MLP {self.config.hidden} ReLU")

    def params(self) -> dict[str, Any]:
        """Hyperparameters (the MLPConfig as a dict), for MLflow."""
        return {"task": self.task, **dataclasses.asdict(self.config)}


def _tensor(X: np.ndarray, device: torch.device) -> torch.Tensor:
    """float32 tensor on ``device`` (shares memory with X on CPU when X is float32)."""
    return torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32), device=device)
