"""Detecting a classifier's wrong predictions (Wu et al., ICCV-W 2019) and what discarding them buys.

* :class:`ErrorDetector` - Wu et al.'s MLP (200-200, dropout 0.5, sigmoid output, BCE, Adam 1e-3)
  on conductance features normalised with the *training* statistics, ``(x - mean) / (max - min)``;
  trained on the classifier's own training-set predictions, label 1 = wrong.
* :func:`stack` - a second-stage model on ``[LCR, detector probability]``: Wu et al.'s small MLP
  (10-10, dropout 0.5) or scikit-learn's random forest / LDA / QDA. It is fitted on the
  validation half, where the detector's outputs are out of sample (the detector never saw those
  images); its own validation scores are out-of-fold (cross-fitted), so the threshold chosen on
  them is not tuned on in-sample scores. Wu et al. fit the combination on in-sample outputs.
* :func:`selective_metrics` - AUROC, recall on wrong and on correct predictions at a threshold,
  coverage and accuracy on the kept predictions; :func:`coverage_curve` the same as a function of
  the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..core.devices import generator, seeded_rng
from ..core.validation import check_choice

STACKERS = ("mlp", "random_forest", "lda", "qda")


class _MLP(nn.Module):
    def __init__(self, n_in: int, hidden: tuple[int, ...], dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(n_in, h), nn.ReLU(), nn.Dropout(dropout)]
            n_in = h
        layers.append(nn.Linear(n_in, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


@dataclass
class ErrorDetector:
    """An MLP that outputs P(prediction is wrong) from features (sklearn-like fit / predict_proba)."""

    hidden: tuple[int, ...] = (200, 200)
    dropout: float = 0.5
    lr: float = 1e-3
    epochs: int = 30
    batch_size: int = 64
    seed: int = 0

    def fit(self, features: torch.Tensor, wrong: torch.Tensor) -> "ErrorDetector":
        f = features.float()
        self.mean_ = f.mean(0)
        self.range_ = (f.amax(0) - f.amin(0)).clamp_min(1e-12)
        z = self._normalise(f)
        y = wrong.float()
        g = generator(self.seed)
        with seeded_rng(self.seed):  # weight initialisation and dropout
            self.model_ = _MLP(z.shape[1], self.hidden, self.dropout)
            opt = torch.optim.Adam(self.model_.parameters(), lr=self.lr)
            self.model_.train()
            for _ in range(self.epochs):
                order = torch.randperm(len(z), generator=g)
                for i in range(0, len(z), self.batch_size):
                    idx = order[i:i + self.batch_size]
                    opt.zero_grad()
                    nn.functional.binary_cross_entropy_with_logits(self.model_(z[idx]), y[idx]).backward()
                    opt.step()
        self.model_.eval()
        return self

    def _normalise(self, f: torch.Tensor) -> torch.Tensor:
        return (f.float() - self.mean_) / self.range_

    @torch.no_grad()
    def predict_proba(self, features: torch.Tensor) -> torch.Tensor:
        """P(wrong) per row."""
        return torch.sigmoid(self.model_(self._normalise(features)))


def _stacker(kind: str, seed: int):
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis, QuadraticDiscriminantAnalysis
    from sklearn.ensemble import RandomForestClassifier

    if kind == "random_forest":
        return RandomForestClassifier(n_estimators=200, min_samples_leaf=5, random_state=seed)
    if kind == "lda":
        return LinearDiscriminantAnalysis()
    if kind == "qda":
        return QuadraticDiscriminantAnalysis(reg_param=0.1)
    return None


def _fit_predict(kind: str, x_fit: np.ndarray, y_fit: np.ndarray, x_pred: np.ndarray, seed: int) -> np.ndarray:
    if kind == "mlp":
        det = ErrorDetector(hidden=(10, 10), dropout=0.5, epochs=100, seed=seed)
        det.fit(torch.from_numpy(x_fit), torch.from_numpy(y_fit))
        return det.predict_proba(torch.from_numpy(x_pred).float()).numpy()
    model = _stacker(kind, seed)
    model.fit(x_fit, y_fit)
    return model.predict_proba(x_pred)[:, 1]


def stack(kind: str, val_features: np.ndarray, val_wrong: np.ndarray, test_features: np.ndarray, *,
          folds: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Second-stage P(wrong): ``(out-of-fold scores on validation, scores on test)``."""
    check_choice("stacker", kind, STACKERS)
    from sklearn.model_selection import StratifiedKFold

    y = val_wrong.astype(int)
    oof = np.zeros(len(y))
    splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(val_features, y)
    for fit_idx, pred_idx in splits:
        oof[pred_idx] = _fit_predict(kind, val_features[fit_idx], y[fit_idx], val_features[pred_idx], seed)
    return oof, _fit_predict(kind, val_features, y, test_features, seed)


def stack_in_sample(kind: str, features: np.ndarray, wrong: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Wu et al.'s protocol: the second stage fitted on ``features`` and scored on the same rows
    (in sample: its AUROC is optimistic; shown beside the out-of-sample one, labelled)."""
    check_choice("stacker", kind, STACKERS)
    return _fit_predict(kind, features, wrong.astype(int), features, seed)


def confidence_scores(logits: torch.Tensor) -> dict[str, np.ndarray]:
    """The classifier's own confidence as wrong-prediction scores (higher = more likely wrong): one
    minus the maximum softmax probability (Hendrycks and Gimpel 2017) and the energy
    ``-logsumexp(logits)`` (Liu et al. 2020). The baselines a detector built on interpretability
    must beat."""
    return {"msp": (1 - torch.softmax(logits.float(), 1).amax(1)).numpy(),
            "energy": (-torch.logsumexp(logits.float(), 1)).numpy()}


def auroc(wrong: np.ndarray, score: np.ndarray) -> float:
    """AUROC of ``score`` (higher = more likely wrong) for wrong-vs-correct."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(wrong.astype(int), score))


def youden_threshold(wrong: np.ndarray, score: np.ndarray) -> float:
    """The threshold maximising recall(wrong) + recall(correct) - 1 (chosen on validation)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, thr = roc_curve(wrong.astype(int), score)
    return float(thr[int(np.argmax(tpr - fpr))])


def selective_metrics(wrong: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, float]:
    """Flag ``score >= threshold`` as wrong and discard it: recall on wrong and on correct
    predictions, coverage (fraction kept) and accuracy on the kept predictions."""
    flagged = score >= threshold
    kept = ~flagged
    wrong = wrong.astype(bool)
    return {
        "recall_wrong": float(flagged[wrong].mean()) if wrong.any() else float("nan"),
        "recall_correct": float(kept[~wrong].mean()) if (~wrong).any() else float("nan"),
        "coverage": float(kept.mean()),
        "acc_kept": float((~wrong[kept]).mean()) if kept.any() else float("nan"),
        "detector_accuracy": float((flagged == wrong).mean()),
    }


def coverage_curve(wrong: np.ndarray, score: np.ndarray, n: int = 101) -> tuple[np.ndarray, np.ndarray]:
    """Coverage and accuracy on kept predictions as the threshold sweeps the score's quantiles."""
    order = np.argsort(score)  # most confident (lowest P(wrong)) first
    correct = ~wrong.astype(bool)[order]
    counts = np.linspace(1, len(score), n).astype(int)
    return counts / len(score), np.array([correct[:c].mean() for c in counts])


#: Wu et al.'s validation AUROC for wrong-vs-correct (their Table 2; official implementation).
PAPER_AUROC = {
    "CIFAR-10 (ResNet-20)": {"lcr": 0.887, "conductance": 0.927, "combined": 0.933},
    "ImageNet-50 (InceptionV3)": {"lcr": 0.931, "conductance": 0.944, "combined": 0.957},
    "ImageNet-100 (InceptionV3)": {"lcr": 0.901, "conductance": 0.941, "combined": 0.946},
}
#: Wu et al., CIFAR-10 test half: base accuracy, and accuracy / coverage of the kept predictions.
PAPER_SELECTIVE = {"acc_base": 0.819, "acc_kept": 0.968, "coverage": 0.728}
