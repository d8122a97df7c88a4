"""Out-of-fold class probabilities from the shipped encoder fine-tuned on the other folds (no Django).

A noise scan's default model (`noise.out_of_fold_probs`) is a logistic regression on frozen MiniLM embeddings and
n-grams: seconds per thousand items. This one fine-tunes every weight of the encoder, with a classification head
on its first token, once per fold, on that fold's complement, and predicts the fold, on the same stratified, seeded
folds. A scan started with model "encoder" averages the two models' probabilities (`noise.scan(second_model=...)`):
on a 3-class question set its flags were right far more often, on single words about as often (docs/benchmarks.md,
*A fine-tuned encoder beside the linear model*), for 4-12 minutes per thousand texts on two free CPU cores (text
messages at the top of that).

The recipe is fixed and was not tuned per data set: AdamW at 1e-4 (weight decay 0.01), 4 epochs of batches of 32,
a 10 % linear warm-up then linear decay, texts cut at 64 tokens, each batch padded to its longest text. It runs on
the GPU where the worker has one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from annotation.quality.noise import DEFAULT_FOLDS

EPOCHS = 4
LEARNING_RATE = 1e-4
WEIGHT_DECAY = 0.01
BATCH = 32
WARMUP = 0.1
MAX_TOKENS = 64
PREDICT_BATCH = 256


def out_of_fold_probs(
    texts: Sequence[str],
    codes: Sequence[int] | np.ndarray,
    *,
    folder: Path | str,
    n_folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    progress: Callable[[int, int, int, int], None] | None = None,
    epochs: int = EPOCHS,
    learning_rate: float = LEARNING_RATE,
) -> np.ndarray:
    """Class probabilities for every text, each from the encoder in `folder` fine-tuned on the other folds only.

    `codes` hold 0..K-1, every code present (as `noise.out_of_fold_probs` takes them, with its label checks already
    passed); column j is code j. `progress(fold, n_folds, step, steps)` is called before every training step (`step`
    from 0 to the fold's `steps` - 1); an exception it raises stops the fit there (a cancelled scan stops before its
    next step, not at the next fold). `epochs` and `learning_rate` are the tests' (a tiny model learns in a few steps
    only at a high rate).
    """
    import torch
    from sklearn.model_selection import StratifiedKFold
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    y = np.asarray(codes, dtype=np.int64)
    k = int(y.max(initial=0)) + 1
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    ids: list[list[int]] = tokenizer(list(texts), truncation=True, max_length=MAX_TOKENS)["input_ids"]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # a GPU worker's, where it has one

    def batch(rows: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(ids[r]) for r in rows)
        tokens = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for n, r in enumerate(rows):
            tokens[n, : len(ids[r])] = torch.tensor(ids[r])
            mask[n, : len(ids[r])] = 1
        return tokens.to(device), mask.to(device)

    out = np.zeros((len(y), k))
    labels = torch.from_numpy(y).to(device)
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for fold, (train, held) in enumerate(folds.split(np.zeros(len(y)), y)):
        steps = epochs * -(-len(train) // BATCH)
        torch.manual_seed(seed * 1000 + fold)
        model = AutoModelForSequenceClassification.from_pretrained(str(folder), num_labels=k, local_files_only=True)
        model.to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=WEIGHT_DECAY)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_then_decay(steps))
        order = np.random.default_rng([seed, fold])
        model.train()
        step = 0
        for _ in range(epochs):
            shuffled = train[order.permutation(len(train))]
            for start in range(0, len(shuffled), BATCH):
                if progress is not None:
                    progress(fold, n_folds, step, steps)
                step += 1
                rows = shuffled[start : start + BATCH].tolist()
                tokens, mask = batch(rows)
                loss = torch.nn.functional.cross_entropy(
                    model(input_ids=tokens, attention_mask=mask).logits, labels[rows]
                )
                loss.backward()
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
        model.eval()
        with torch.no_grad():
            for start in range(0, len(held), PREDICT_BATCH):
                rows = held[start : start + PREDICT_BATCH].tolist()
                tokens, mask = batch(rows)
                out[rows] = torch.softmax(model(input_ids=tokens, attention_mask=mask).logits, -1).cpu().numpy()
    return out


def _warmup_then_decay(steps: int) -> Callable[[int], float]:
    """The learning rate's factor at each step: up over the first WARMUP of the steps, then down to 0 at the last."""
    warmup = max(1.0, WARMUP * steps)
    return lambda step: min(1.0, (step + 1) / warmup) * max(0.0, 1 - step / steps)
