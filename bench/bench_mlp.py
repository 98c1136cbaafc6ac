"""mlp training throughput: our tensor-slicing loop vs a plain DataLoader loop, in the same run.

    python bench/bench_mlp.py                 # throughput on 400,000 rows (a few minutes)
    python bench/bench_mlp.py --imbalance     # class_weights (inverse / sqrt-inverse) vs sampler
                                              # vs none: ROC-AUC and macro-F1 on the bundled data

The 400,000-row table is resampled with replacement (seeded) from the bundled grade data; its
features are built here, self-contained: numeric applicant columns standardised with NaN -> 0,
plus one-hot categoricals. Both loops train the same network (the reference MLPConfig) with the
same batch size, optimizer, loss and clipping; only the way batches are made differs.
Figures go to bench/RESULTS.md by hand, with the machine and the date this script prints.
"""

from __future__ import annotations

import argparse
import statistics
import time
from importlib import resources

import numpy as np
import pandas as pd
import torch
from _results import cpu_name
from torch import nn

from loanrisk.models.train import (
    Dropout,
    MLPConfig,
    build_network,
    class_weights,
    make_loss,
    make_optimizer,
    train_epoch,
)

GRADES = "ABCDEFG"
ONE_HOT = ["homeownership", "verified_income", "loan_purpose", "application_type", "state",
           "term"]
NOT_FEATURES = {"interest_rate", "installment", "sub_grade", "grade", "loan_status", "balance",
                "paid_total", "paid_principal", "paid_interest", "paid_late_fees", "issue_month",
                "initial_listing_status", "disbursement_method", "emp_title",
                "verification_income_joint"}


def features(df: pd.DataFrame, one_hot: list[str], drop: set[str]) -> np.ndarray:
    """float32 (n, F): standardised numeric columns (NaN -> 0) then one-hot categoricals."""
    numeric = [c for c in df.columns
               if c not in drop and c not in one_hot and pd.api.types.is_numeric_dtype(df[c])]
    num = df[numeric].astype(float)
    num = ((num - num.mean()) / num.std().replace(0, 1)).fillna(0.0)
    cats = pd.get_dummies(df[one_hot].astype(str), dtype=float)
    return np.hstack([num.to_numpy(), cats.to_numpy()]).astype(np.float32)


def grade_data() -> tuple[np.ndarray, np.ndarray]:
    """The bundled grade table (10,000 rows) as features and int64 grade indices."""
    path = resources.files("loanrisk") / "data" / "loans_full_schema.csv.gz"
    df = pd.read_csv(str(path))
    y = df["grade"].map({g: i for i, g in enumerate(GRADES)}).to_numpy(np.int64)
    return features(df, ONE_HOT, NOT_FEATURES), y


def default_data() -> tuple[np.ndarray, np.ndarray]:
    """The bundled default table (good/bad, about 5% bad) as features and 0/1 labels."""
    path = resources.files("loanrisk") / "data" / "lending_club.csv.gz"
    df = pd.read_csv(str(path))
    y = (df["Class"] == "bad").to_numpy(np.int64)
    cats = [c for c in df.columns if c != "Class" and not pd.api.types.is_numeric_dtype(df[c])]
    return features(df, cats, {"Class"}), y


def dataloader_epoch(net: nn.Module, opt: torch.optim.Optimizer, X: torch.Tensor,
                     y: torch.Tensor, *, loss_fn: object, batch_size: int,
                     grad_clip: float) -> float:
    """The peer: the textbook loop over DataLoader(TensorDataset, shuffle=True); mean loss."""
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=True)
    net.train()
    total = 0.0
    for xb, yb in loader:
        loss = loss_fn(net(xb), yb)  # type: ignore[operator]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
        opt.step()
        total += loss.item() * len(xb)
    return total / len(X)


def throughput(*, rows: int, epochs: int, seed: int, torch_dropout: bool = False) -> None:
    """Samples/s of both loops, alternating epochs so machine noise hits both alike."""
    X0, y0 = grade_data()
    pick = np.random.default_rng(seed).integers(0, len(X0), rows)  # with replacement
    X, y = torch.from_numpy(X0[pick]), torch.from_numpy(y0[pick])
    cfg = MLPConfig(seed=seed)
    torch.manual_seed(seed)
    net = build_network(X.shape[1], len(GRADES), cfg)
    if torch_dropout:  # stock nn.Dropout (Bernoulli per activation) instead of ours
        for i, m in enumerate(net):
            if isinstance(m, Dropout):
                net[i] = nn.Dropout(m.p)
    opt = make_optimizer(net, cfg)  # the same AdamW for both loops
    loss_fn = make_loss(cfg, n_outputs=len(GRADES), weights=class_weights(y, len(GRADES),
                                                                           power=0.5))
    gen = torch.Generator().manual_seed(seed)

    def ours() -> None:
        loss, _ = train_epoch(net, opt, X, y, torch.randperm(rows, generator=gen),
                              loss_fn=loss_fn, batch_size=cfg.batch_size, grad_clip=cfg.grad_clip)
        float(loss)

    def peer() -> None:
        dataloader_epoch(net, opt, X, y, loss_fn=loss_fn, batch_size=cfg.batch_size,
                         grad_clip=cfg.grad_clip)

    cpu = cpu_name()
    print(f"date {time.strftime('%Y-%m-%d')}  cpu {cpu}  nproc {torch.get_num_threads()} threads"
          f"  torch {torch.__version__}  rows {rows}  features {X.shape[1]}  "
          f"batch {cfg.batch_size}  dropout {'torch' if torch_dropout else 'loanrisk'}")
    ours()  # warm-up: allocator, thread pool, first-call dispatch
    rates: dict[str, list[float]] = {"ours": [], "dataloader": []}
    for _ in range(epochs):
        for name, fn in (("ours", ours), ("dataloader", peer)):
            t = time.perf_counter()
            fn()
            rates[name].append(rows / (time.perf_counter() - t))
    for name, r in rates.items():
        print(f"{name:>10}: median {statistics.median(r):>9,.0f}  best {max(r):>9,.0f} samples/s  "
              f"(epochs: {', '.join(f'{v:,.0f}' for v in r)})")
    ratio = statistics.median(rates["ours"]) / statistics.median(rates["dataloader"])
    best = max(rates["ours"]) / max(rates["dataloader"])
    print(f"ratio ours / dataloader: {ratio:.1f}x (medians), {best:.1f}x (bests)")


def imbalance(*, seed: int, repeats: int) -> None:
    """Validation-split ROC-AUC (macro OvR) and macro-F1 for each way of handling imbalance."""
    from sklearn.metrics import f1_score, roc_auc_score
    from sklearn.model_selection import train_test_split

    from loanrisk.models.mlp import MLPModel

    variants = {"class_weights power 1 (inverse)": {"class_weight_power": 1.0},
                "class_weights power 0.5 (sqrt)": {"class_weight_power": 0.5},
                "sampler": {"imbalance": "sampler"}, "none": {"imbalance": "none"}}
    for data_name, (X, y) in (("grades A-G", grade_data()), ("default good/bad", default_data())):
        k = int(y.max()) + 1
        task = "binary" if k == 2 else "multiclass"
        print(f"\n{data_name}: {len(y)} rows, class shares {np.round(np.bincount(y) / len(y), 3)}")
        for name, over in variants.items():
            scores = []
            for r in range(repeats):
                idx = np.arange(len(y))
                tr, te = train_test_split(idx, test_size=0.3, stratify=y, random_state=seed + r)
                tr, va = train_test_split(tr, test_size=0.15, stratify=y[tr],
                                          random_state=seed + r)
                m = MLPModel(seed=seed + r, task=task, progress=False, **over)
                m.fit(X[tr], y[tr], X_val=X[va], y_val=y[va], n_classes=k)
                p = m.predict_proba(X[te])
                auc = roc_auc_score(y[te], p[:, 1]) if k == 2 else \
                    roc_auc_score(y[te], p, multi_class="ovr", average="macro")
                f1 = f1_score(y[te], p.argmax(1), average="macro")
                scores.append((auc, f1, m.best_epoch_))
            auc, f1, ep = np.mean(scores, axis=0)
            print(f"  {name:<34} ROC-AUC {auc:.4f}  macro-F1 {f1:.4f}  best epoch {ep:.0f}")


def main() -> None:
    """Parse the command line and run one benchmark."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=400_000)
    ap.add_argument("--epochs", type=int, default=5, help="timed epochs per loop")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--torch-dropout", action="store_true", help="stock nn.Dropout in both")
    ap.add_argument("--imbalance", action="store_true", help="compare imbalance handling")
    ap.add_argument("--repeats", type=int, default=3, help="seeds per variant (--imbalance)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.imbalance:
        imbalance(seed=args.seed, repeats=args.repeats)
    else:
        throughput(rows=args.rows, epochs=args.epochs, seed=args.seed,
                   torch_dropout=args.torch_dropout)


if __name__ == "__main__":
    main()
