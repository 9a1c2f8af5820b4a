"""Fine-tuning: the encoder and a linear head trained end to end on labelled samples.

A frozen probe asks what the embeddings already hold; fine-tuning asks how good a
starting point the weights are, the protocol most JEPA papers report beside (or instead
of) the linear probe (I-JEPA, ECG-JEPA; SAR-JEPA reports fine-tuning only). The encoder
is copied, so the caller's weights stay as they were. Blocks near the input move less
(layer-wise learning-rate decay, as BEiT and MAE fine-tune: Bao et al., ICLR 2022,
https://arxiv.org/abs/2106.08254; He et al., CVPR 2022, https://arxiv.org/abs/2111.06377).
The settings are fixed defaults, the same for every encoder and every start, so that a
pretrained start and a random one are compared under one budget.
"""

from __future__ import annotations

import copy
import re
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import DataError
from .evaluators import EvalContext, label_task, labelled_embeddings, split_indices


@dataclass
class FineTuneSettings:
    """One fine-tuning budget: ``epochs`` over the training samples in batches of
    ``batch_size``; AdamW at peak ``lr`` (the head at ``head_lr_scale * lr``), warm-up over
    the first ``warmup`` share of steps then cosine decay; block ``i`` of ``depth`` at
    ``lr * layer_decay ** (depth - i)``, the token embeddings one step lower;
    ``balanced``: classes weighted by their inverse frequency in the loss."""

    epochs: int = 30
    lr: float = 1e-3
    head_lr_scale: float = 10.0
    layer_decay: float = 0.75
    weight_decay: float = 0.05
    batch_size: int = 32
    warmup: float = 0.1
    balanced: bool = False


_BLOCK = re.compile(r"(?:^|\.)blocks\.(\d+)\.")


def layer_groups(encoder: Any, lr: float, decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups with layer-wise decay: parameters of ``blocks.<i>`` at
    ``lr * decay ** (depth - i)``, the final norm at ``lr``, everything else (token and
    position embeddings) at ``lr * decay ** (depth + 1)``."""
    named = [(n, p) for n, p in encoder.named_parameters() if p.requires_grad]
    depth = 1 + max((int(m.group(1)) for n, _ in named if (m := _BLOCK.search(n))),
                    default=-1)
    levels: dict[int, list[Any]] = {}
    for name, p in named:
        m = _BLOCK.search(name)
        if m:
            level = int(m.group(1)) + 1
        else:
            level = depth + 1 if name.startswith(("norm.", "fc_norm.")) else 0
        levels.setdefault(level, []).append(p)
    return [{"params": ps, "lr": lr * decay ** (depth + 1 - level)}
            for level, ps in sorted(levels.items())]


def finetune_predict(encoder: Any, dataset: Any, labels: np.ndarray, train: np.ndarray,
                     test: np.ndarray, task: str, settings: FineTuneSettings | None = None,
                     seed: int = 0, device: str = "cpu", progress: bool = False,
                     pool: str | None = None, scores: bool = False) -> np.ndarray:
    """Fine-tune a copy of ``encoder`` with a linear head on ``dataset[train]`` (targets
    ``labels[train]``) and return its predictions for ``dataset[test]``: class labels
    (classification), values (regression) or probabilities (multilabel). ``progress``
    shows a bar over the epochs. ``pool``: how the head reads the tokens (one of
    :data:`polyjepa.tokens.POOLS`; the encoder's own ``eval.pool`` by default).
    ``scores``: for classification, the head's logits ``[len(test), classes]`` instead
    of labels, columns in the order of ``np.unique(labels[train])`` (to rank classes)."""
    import math

    import torch
    import torch.nn as nn

    from .data import eval_loader, move_to
    from .tokens import batch_valid, encoder_pool, pool_tokens

    s = settings or FineTuneSettings()
    dev = torch.device(device)
    torch.manual_seed(int(seed))
    model = copy.deepcopy(encoder).to(dev).train()
    pool = pool or encoder_pool(model)

    def pooled(batch: Any) -> torch.Tensor:
        batch = move_to(batch, dev)
        return pool_tokens(model(batch).float(), batch_valid(batch), pool)

    y = np.asarray(labels)
    if task == "classification":
        classes = np.unique(y[train])
        if len(classes) < 2:
            raise DataError("fine-tuning: the training split holds a single class")
        target = torch.as_tensor(np.searchsorted(classes, y), dtype=torch.long)
        counts = np.bincount(target[train].numpy(), minlength=len(classes))
        weight = (torch.as_tensor(len(train) / (len(classes) * np.maximum(counts, 1)),
                                  dtype=torch.float32, device=dev) if s.balanced else None)
        outputs = len(classes)
        loss_fn = nn.CrossEntropyLoss(weight=weight)
    elif task == "regression":
        mu, sd = float(y[train].mean()), float(y[train].std()) or 1.0
        target = torch.as_tensor((y - mu) / sd, dtype=torch.float32).reshape(len(y), -1)
        outputs, loss_fn = target.shape[1], nn.MSELoss()
    elif task == "multilabel":
        target = torch.as_tensor(y, dtype=torch.float32)
        outputs, loss_fn = target.shape[1], nn.BCEWithLogitsLoss()
    else:
        raise DataError(f"fine-tuning: unknown task {task!r}")
    with torch.no_grad():
        width = pooled(next(iter(eval_loader(dataset, 2, [int(train[0])])))).shape[1]
    # features standardised over the batch before the linear layer, as MAE's linear probe
    # and the frozen probes' scaler do: small spreads at random init still reach the head
    head = nn.Sequential(nn.BatchNorm1d(width, affine=False), nn.Linear(width, outputs)).to(dev)
    groups = layer_groups(model, s.lr, s.layer_decay)
    groups.append({"params": list(head.parameters()), "lr": s.lr * s.head_lr_scale})
    for g in groups:
        g["peak"] = g["lr"]
    opt = torch.optim.AdamW(groups, weight_decay=s.weight_decay)
    per_epoch = math.ceil(len(train) / s.batch_size)
    total, warm = s.epochs * per_epoch, max(1, int(s.warmup * s.epochs * per_epoch))
    rng = np.random.default_rng(int(seed))
    step = 0
    epochs: Any = range(s.epochs)
    if progress:
        from tqdm.auto import tqdm

        epochs = tqdm(epochs, desc="fine-tune", unit="epoch")
    for _ in epochs:
        order = rng.permutation(np.asarray(train))
        loader = eval_loader(dataset, s.batch_size, order.tolist())
        for i, batch in enumerate(loader):
            batch_idx = order[i * s.batch_size:(i + 1) * s.batch_size]
            if len(batch_idx) < 2:  # batch statistics need two samples
                continue
            scale = (step + 1) / warm if step < warm else \
                0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))
            for g in opt.param_groups:
                g["lr"] = g["peak"] * scale
            loss = loss_fn(head(pooled(batch)), target[batch_idx].to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
    model.eval()
    head.eval()
    out = []
    with torch.no_grad():
        for batch in eval_loader(dataset, 256, np.asarray(test).tolist()):
            out.append(head(pooled(batch)).cpu())
    logits = torch.cat(out)
    if task == "classification":
        return logits.numpy() if scores else classes[logits.argmax(1).numpy()]
    if task == "regression":
        return (logits.numpy() * sd + mu).reshape(len(test), *y.shape[1:])
    return torch.sigmoid(logits).numpy()


class FineTune:
    """Evaluator: held-out scores of the encoder fine-tuned end to end with a linear head
    (see :func:`finetune_predict`); the split is :func:`polyjepa.split_indices` (by group
    when the data has groups). Slower than a frozen probe: it trains the encoder."""

    needs_labels = True

    def __init__(self, test_size: float = 0.25, **settings: Any):
        self.test_size = test_size
        self.settings = FineTuneSettings(**settings)

    def __call__(self, ctx: EvalContext) -> dict[str, float]:
        from sklearn.metrics import accuracy_score, f1_score, r2_score, roc_auc_score

        if ctx.encoder is None or ctx.dataset is None:
            raise DataError("fine-tuning needs the encoder and its dataset, not only "
                            "embeddings")
        _, y = labelled_embeddings(ctx, "fine-tuning")
        task = label_task(y, ctx.dataset)
        tr, te = split_indices(y if task != "multilabel" else y[:, 0], ctx.groups, ctx.seed,
                               self.test_size, task)
        pred = finetune_predict(ctx.encoder, ctx.dataset, y, tr, te, task, self.settings,
                                ctx.seed, str(ctx.extra.get("device", "cpu")),
                                progress=sys.stderr.isatty())
        if task == "regression":
            return {"finetune_r2": float(r2_score(y[te], pred))}
        if task == "multilabel":
            cols = [j for j in range(y.shape[1]) if len(np.unique(y[te, j])) == 2]
            if not cols:
                raise DataError("fine-tuning: no label column has both classes in the test split")
            return {"finetune_macro_auc": float(np.mean(
                [roc_auc_score(y[te, j], pred[:, j]) for j in cols]))}
        return {"finetune_acc": float(accuracy_score(y[te], pred)),
                "finetune_f1_macro": float(f1_score(y[te], pred, average="macro"))}
