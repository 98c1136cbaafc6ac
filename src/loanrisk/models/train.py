"""The network's training loop, written out: no trainer framework, no per-sample DataLoader.

The whole training table lives in two tensors. Each epoch draws one seeded permutation and
slices it into batches, so a batch is one ``index_select`` instead of 1536 ``__getitem__`` calls
and a collate. Losses and accuracies are summed on-tensor and read once per epoch (no ``.item()``
per batch). ``bench/bench_mlp.py`` measures this loop against a plain DataLoader loop.

On a table larger than ``epoch_rows`` an epoch is a fresh seeded sample of that many rows, and
early stopping watches at most ``val_rows`` validation rows: the work of an epoch, and so of a
run, is bounded whatever the table's size (``bench/bench_learn_scale.py``).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class MLPConfig:
    """Hyperparameters of the network and its training; the defaults are the reference design."""

    hidden: tuple[int, ...] = (128, 64, 32, 16)  # widths of the hidden layers, each Linear+ReLU
    dropout: tuple[float, ...] = (0.3, 0.3, 0.2, 0.1)  # after each hidden layer (train only)
    lr: float = 0.012  # AdamW learning rate
    weight_decay: float = 1e-4  # AdamW decoupled weight decay
    batch_size: int = 1536
    max_epochs: int = 300
    # rows one epoch trains on: a larger table draws a fresh seeded sample of this many rows each
    # epoch, so training work (and so time) stays bounded on a full book; None: every row
    epoch_rows: int | None = 65_536
    # validation rows early stopping watches (a seeded sample beyond); None: every row
    val_rows: int | None = 65_536
    lr_patience: int = 10  # ReduceLROnPlateau: epochs without progress before the lr is cut
    lr_factor: float = 0.5  # ... and by how much
    patience: int = 30  # early stopping: epochs without a val-loss gain of min_delta
    min_delta: float = 0.001  # absolute val-loss gain that counts as progress
    grad_clip: float = 1.0  # max global gradient norm; 0 turns clipping off
    # class imbalance: weight the loss per class, resample the batches, or neither
    imbalance: Literal["class_weights", "sampler", "none"] = "class_weights"
    class_weight_power: float = 0.5  # weight ∝ (n / n_c) ** power: 1 inverse, 0.5 sqrt-inverse
    loss: Literal["ce", "focal"] = "ce"  # focal down-weights rows the network already gets right
    focal_gamma: float = 2.0
    label_smoothing: float = 0.0
    seed: int = 42
    device: str = "auto"  # "auto": CUDA when available, else CPU
    threads: int | None = None  # torch CPU threads during fit; None keeps torch's default
    progress: bool = True  # tqdm bar over epochs (also off when stderr is not a terminal)


@dataclass
class TrainResult:
    """What ``train`` returns: the best weights and how the training went."""

    state: dict[str, torch.Tensor]  # the network's state_dict at the best epoch, on CPU
    best_epoch: int  # 1-based epoch with the lowest validation loss
    best_val_loss: float
    epochs_run: int
    history: dict[str, list[float]] = field(default_factory=dict)  # one value per epoch
    seconds: float = 0.0  # wall time of the whole loop, validation included
    samples_per_s: float = 0.0  # training rows per second of the training passes alone


class Dropout(nn.Module):
    """Inverted dropout like ``nn.Dropout``, with a mask that is five times cheaper on CPU.

    ``nn.Dropout`` draws one Bernoulli per activation and took half of a CPU training step; here
    each 64-bit random integer gives four 16-bit uniforms, so ``p`` is exact to 1/65536.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), not {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x unchanged in eval mode; else x * keep / (1 - p), keep ~ Bernoulli(1 - p)."""
        if not self.training or self.p == 0.0:
            return x
        n = x.numel()
        # the full int64 range: random_() would leave the top bit of every fourth int16 at 0
        bits = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64,
                             device=x.device)
        u16 = bits.view(torch.int16)[:n].view_as(x)  # uniform on [-32768, 32767]
        keep = u16 >= round(self.p * 65536) - 32768
        return x * keep.to(x.dtype).mul_(1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; any other name is passed to torch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_network(n_features: int, n_outputs: int, config: MLPConfig) -> nn.Sequential:
    """[Linear -> ReLU -> Dropout] per hidden layer, then Linear to ``n_outputs`` logits.

    Weights are Xavier-uniform, biases zero. Raises ValueError when hidden and dropout differ in
    length.
    """
    if len(config.hidden) != len(config.dropout):
        raise ValueError(f"hidden {config.hidden} and dropout {config.dropout} need one value "
                         "per hidden layer each")
    layers: list[nn.Module] = []
    width = n_features
    for h, p in zip(config.hidden, config.dropout, strict=True):
        layers += [nn.Linear(width, h), nn.ReLU(), Dropout(p)]
        width = h
    layers.append(nn.Linear(width, n_outputs))
    for m in layers:
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return nn.Sequential(*layers)


def make_optimizer(net: nn.Module, config: MLPConfig) -> torch.optim.AdamW:
    """AdamW; the fused kernel (one pass over all parameters) is ~6% faster on CPU than foreach."""
    return torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                             fused=True)


def class_weights(y: np.ndarray | torch.Tensor, n_classes: int, *,
                  power: float = 1.0) -> torch.Tensor:
    """Per-class loss weights (n_classes,) float32: w_c ∝ (n / n_c) ** power.

    Scaled so the mean weight over the rows is 1 (sum_c n_c * w_c = n): with power 1 this is
    scikit-learn's "balanced", n / (K * n_c). Classes absent from ``y`` get weight 0.
    """
    counts = torch.bincount(torch.as_tensor(y, dtype=torch.long), minlength=n_classes).double()
    raw = torch.where(counts > 0, (counts.sum() / counts.clamp(min=1)) ** power, 0.0)
    return (raw * counts.sum() / (raw * counts).sum()).float()


def make_loss(config: MLPConfig, *, n_outputs: int,
              weights: torch.Tensor | None) -> LossFn:
    """loss(logits, y) -> scalar: the class-weighted mean of the per-row loss.

    ``n_outputs == 1`` is binary: BCE-with-logits on the single logit (the sigmoid is inside the
    loss, never in the network). Otherwise cross-entropy over the logits. ``focal`` multiplies
    each row's loss by (1 - p_true) ** gamma. Label smoothing moves targets towards uniform.
    """
    ls, gamma, focal = config.label_smoothing, config.focal_gamma, config.loss == "focal"
    if config.loss not in ("ce", "focal"):
        raise ValueError(f"loss must be 'ce' or 'focal', not {config.loss!r}")

    def loss_fn(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if n_outputs == 1:
            z = logits.squeeze(1)  # (B,)
            target = y.to(z.dtype) * (1.0 - ls) + 0.5 * ls
            per_row = F.binary_cross_entropy_with_logits(z, target, reduction="none")
            if focal:
                p = torch.sigmoid(z)
                per_row = per_row * (1.0 - torch.where(y == 1, p, 1.0 - p)) ** gamma
        elif not focal:  # the fused kernel; its weighted mean is sum(w_i l_i) / sum(w_i) too
            return F.cross_entropy(logits, y, weight=weights, label_smoothing=ls)
        else:
            per_row = F.cross_entropy(logits, y, reduction="none", label_smoothing=ls)
            p_true = torch.softmax(logits, dim=1).gather(1, y[:, None]).squeeze(1)
            per_row = per_row * (1.0 - p_true) ** gamma
        if weights is None:
            return per_row.mean()
        w = weights[y]  # (B,)
        return (w * per_row).sum() / w.sum()

    return loss_fn


def predict_labels(logits: torch.Tensor) -> torch.Tensor:
    """Class indices from logits: logit > 0 for one output, else the argmax."""
    return (logits.squeeze(1) > 0).long() if logits.shape[1] == 1 else logits.argmax(dim=1)


def train_epoch(net: nn.Module, opt: torch.optim.Optimizer, X: torch.Tensor, y: torch.Tensor,
                order: torch.Tensor, *, loss_fn: LossFn, batch_size: int,
                grad_clip: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass over the rows in ``order``, batch by batch; (mean loss, accuracy) as tensors.

    Nothing here synchronises with the host: the caller reads both values once per epoch.
    """
    net.train()
    n = order.numel()
    loss_sum = torch.zeros((), device=X.device)
    correct = torch.zeros((), dtype=torch.long, device=X.device)
    params = [p for p in net.parameters() if p.requires_grad]
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        xb, yb = X.index_select(0, idx), y.index_select(0, idx)  # (B, F), (B,)
        logits = net(xb)
        loss = loss_fn(logits, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(params, grad_clip, foreach=True)
        opt.step()
        loss_sum += loss.detach() * idx.numel()
        correct += (predict_labels(logits.detach()) == yb).sum()
    return loss_sum / n, correct.double() / n


@torch.no_grad()
def evaluate(net: nn.Module, X: torch.Tensor, y: torch.Tensor, *, loss_fn: LossFn,
             chunk: int = 65536) -> tuple[float, float]:
    """(loss, accuracy) over all rows in eval mode (dropout off), in chunks."""
    net.eval()
    logits = torch.cat([net(X[i:i + chunk]) for i in range(0, len(X), chunk)])
    acc = (predict_labels(logits) == y).double().mean()
    return float(loss_fn(logits, y)), float(acc)


def train(net: nn.Module, X: torch.Tensor, y: torch.Tensor, *, X_val: torch.Tensor,
          y_val: torch.Tensor, loss_fn: LossFn, config: MLPConfig,
          sample_weights: torch.Tensor | None = None,
          on_epoch: Callable[[int, dict[str, float]], None] | None = None) -> TrainResult:
    """Train ``net`` in place with AdamW, ReduceLROnPlateau and early stopping on val loss.

    ``on_epoch(epoch, row)`` is called after each epoch with that epoch's history row (used by
    `loanrisk tune` to report to Optuna and prune; an exception it raises stops training).

    All tensors must already be on the network's device. ``sample_weights`` (n,) switches the
    epoch order from a permutation to a seeded weighted draw with replacement (the "sampler"
    imbalance mode). Validation loss is ``loss_fn`` too, so early stopping watches the
    objective being trained. The best weights are loaded back into ``net`` before returning.
    """
    from tqdm.auto import trange

    opt = make_optimizer(net, config)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode="min", factor=config.lr_factor, patience=config.lr_patience)
    gen = torch.Generator().manual_seed(config.seed)  # the shuffles; CPU so any device agrees
    n = len(X)
    rows = n if config.epoch_rows is None else min(n, config.epoch_rows)
    if config.val_rows is not None and len(X_val) > config.val_rows:
        keep = torch.randperm(len(X_val), generator=torch.Generator().manual_seed(
            config.seed + 1))[:config.val_rows].to(X_val.device)
        X_val, y_val = X_val[keep], y_val[keep]
    hist: dict[str, list[float]] = {k: [] for k in
                                    ("train_loss", "val_loss", "train_acc", "val_acc", "lr")}
    best_loss, best_epoch, since_best = float("inf"), 0, 0
    best_state = copy.deepcopy(net.state_dict())
    t0, train_s = time.perf_counter(), 0.0
    bar = trange(config.max_epochs, desc="mlp", unit="epoch",
                 disable=None if config.progress else True, leave=False)
    for epoch in bar:
        t = time.perf_counter()
        if sample_weights is None:
            order = torch.randperm(n, generator=gen)[:rows]
        else:
            order = torch.multinomial(sample_weights, rows, replacement=True, generator=gen)
        tr_loss, tr_acc = train_epoch(net, opt, X, y, order.to(X.device), loss_fn=loss_fn,
                                      batch_size=config.batch_size, grad_clip=config.grad_clip)
        tr = (float(tr_loss), float(tr_acc))  # the one host sync of the epoch
        train_s += time.perf_counter() - t
        val_loss, val_acc = evaluate(net, X_val, y_val, loss_fn=loss_fn)
        row = (tr[0], val_loss, tr[1], val_acc, opt.param_groups[0]["lr"])  # in hist's order
        for k, v in zip(hist, row, strict=True):
            hist[k].append(float(v))
        sched.step(val_loss)
        if on_epoch is not None:
            on_epoch(epoch + 1, {k: v[-1] for k, v in hist.items()})
        bar.set_postfix(train_loss=f"{tr[0]:.4f}", val_loss=f"{val_loss:.4f}",
                        val_acc=f"{val_acc:.3f}")
        if val_loss < best_loss - config.min_delta:
            best_loss, best_epoch, since_best = val_loss, epoch + 1, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            since_best += 1
            if since_best >= config.patience:
                break
    bar.close()
    net.load_state_dict(best_state)
    epochs_run = len(hist["train_loss"])
    return TrainResult(
        state={k: v.cpu() for k, v in best_state.items()}, best_epoch=best_epoch,
        best_val_loss=best_loss, epochs_run=epochs_run, history=hist,
        seconds=time.perf_counter() - t0,
        samples_per_s=rows * epochs_run / train_s if train_s > 0 else 0.0)
