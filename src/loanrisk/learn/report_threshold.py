"""Binary models at the decision threshold: what the lender actually does with them.

At a 5% default rate every model's argmax says "good" for almost everyone, so the usual
confusion matrix and precision/recall at 0.5 say nothing. Here each model gets its own decline
threshold from the same stated rule as the champion (``loanrisk.scoring.decision``: e.g. the largest
approved share whose expected bad rate stays under LOANRISK_MAX_BAD_RATE), and is judged by what
that threshold does on the evaluation split.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix

from loanrisk import plots

FIGURE = "confusion_at_threshold.png"


def at_threshold(trained: list[Any], y: np.ndarray, rule: dict[str, Any]) -> dict[str, Any]:
    """Per model: its threshold under ``rule`` and the decline outcome on the evaluation rows."""
    from loanrisk.scoring.decision import decision_rule

    settings = SimpleNamespace(decision_rule=rule.get("rule", "max_bad_rate"),
                               max_bad_rate=rule.get("max_bad_rate", 0.04),
                               target_approval_rate=rule.get("target_approval_rate", 0.8))
    out: dict[str, Any] = {}
    for t in trained:
        p_bad = np.asarray(t.eval_proba)[:, -1]
        thr = float(decision_rule(t.eval_proba, task="binary", settings=settings)[
            "decline_threshold"])
        declined = p_bad >= thr
        approved = ~declined
        bad = y == 1
        out[t.name] = {
            "threshold": thr,
            "declined_share": float(declined.mean()),
            "bad_rate_approved": float(bad[approved].mean()) if approved.any() else float("nan"),
            "bad_declined_share": float(declined[bad].mean()) if bad.any() else float("nan"),
            "precision_declined": float(bad[declined].mean()) if declined.any() else float("nan"),
            "confusion": confusion_matrix(y, declined.astype(int), labels=[0, 1]).tolist(),
        }
    return out


def figure(trained: list[Any], table: dict[str, Any], out: Path, *, title: str) -> Path:
    """The confusion matrices at each model's threshold, side by side."""
    evals = [dataclasses.replace(
        t.evaluation, model=f"{t.name}: decline if p(bad) >= {table[t.name]['threshold']:.3f}",
        confusion=np.asarray(table[t.name]["confusion"])) for t in trained]
    subtitles = [f"declined {table[t.name]['declined_share']:.1%} · bad among approved "
                 f"{table[t.name]['bad_rate_approved']:.2%}" for t in trained]
    return plots.confusion_matrices(evals, out / FIGURE, title=title, subtitles=subtitles)


def markdown(table: dict[str, Any], rule: dict[str, Any]) -> list[str]:
    """The report section: one row per model."""
    how = (f"approve the largest share whose expected bad rate is at most "
           f"{rule['max_bad_rate']:.1%}" if rule.get("rule") == "max_bad_rate"
           else f"approve {rule.get('target_approval_rate', 0.8):.0%} of applicants")
    lines = ["## At the decision threshold", "",
             f"Each model with its own decline threshold from the champion's rule ({how}), on the "
             "evaluation split: what declining at that threshold does. (The table above scores "
             "argmax, i.e. p >= 0.5, which few applicants reach.)", "",
             "| model | decline if p(bad) >= | declined | bad rate among approved | bad loans "
             "declined | bad share of declines |", "|---|---:|---:|---:|---:|---:|"]
    def pct(x: float, digits: int = 1) -> str:
        return "n/a" if x != x else f"{x:.{digits}%}"  # NaN: nobody declined or approved

    for name, m in table.items():
        lines.append(f"| {name} | {m['threshold']:.4f} | {pct(m['declined_share'])} | "
                     f"{pct(m['bad_rate_approved'], 2)} | {pct(m['bad_declined_share'])} | "
                     f"{pct(m['precision_declined'])} |")
    lines += ["", f"![confusion matrices at the threshold]({FIGURE})", ""]
    return lines
