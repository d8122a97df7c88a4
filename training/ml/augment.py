"""Data augmentation of a snapshot's train rows: random edits, embedding-neighbour synonyms, paraphrase (no Django).

Every augmented row names its source row and method (`provenance`) and is a train row: `augment_rows` refuses
any other split, so validation and test stay exactly what people labelled. Output is deterministic given the
seed: each augmented row draws from its own generator, seeded by (seed, source id, method, index), so a row's
augmentation does not depend on which other rows were augmented. Paraphrase sampling is seeded the same way.

The pure parts (`random_edits`, `synonym_replace` given a `Synonyms` table, `augment_rows`) import nothing
heavy; `Synonyms.from_model_dir` and `Paraphraser` import torch and transformers when built (workers only).

- Random edits (EDA, Wei & Zou 2019, without WordNet): one of swap two words, delete words, or repeat a word
  of the text at another place, on about `EDIT_RATE` of the words.
- Synonyms: nearest neighbours by cosine of the encoder's input token embeddings (all-MiniLM-L6-v2, shipped),
  among whole-word vocabulary tokens (alphabetic, not a `##` word piece, not a stopword, 3+ letters). No
  lexicon such as WordNet is installed; these neighbours are related words, not always synonyms (an antonym
  can be close), which is what the bench measures.
- Paraphrase: the shipped causal LM (SmolLM2-135M-Instruct) asked to reword the text, sampled with a seed;
  an answer that is empty, repeats the text or runs far longer than it is dropped (and counted).
- Back-translation needs a translation model; none is shipped, so it is never available here.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

RANDOM_EDITS = "random_edits"
SYNONYMS = "synonyms"
PARAPHRASE = "paraphrase"
BACK_TRANSLATION = "back_translation"
METHODS = (RANDOM_EDITS, SYNONYMS, PARAPHRASE, BACK_TRANSLATION)

TRAIN = "train"
EDIT_RATE = 0.1  # share of a text's words an edit touches (at least one)
SYNONYM_RATE = 0.15  # share of a text's replaceable words a synonym replacement changes (at least one)
NEIGHBOURS = 5  # a replacement is drawn from this many nearest whole-word tokens
MIN_SIMILARITY = 0.35  # cosine below this is not offered as a replacement
MIN_WORD_LENGTH = 3
PARAPHRASE_MAX_NEW_TOKENS = 96
PARAPHRASE_MAX_GROWTH = 3.0  # an answer this many times longer than the text is a ramble, not a paraphrase
PARAPHRASE_PROMPT = (
    "Rewrite the following text in different words, keeping its meaning, language and tone. "
    "Answer with the rewritten text only.\n\nText: {text}"
)

ERROR_NOT_TRAIN = "row {source}: only train rows are augmented, this one is in {split!r}"
ERROR_UNKNOWN_METHOD = "unknown augmentation method {method!r}; use one of {methods}"
ERROR_NO_SYNONYMS = "synonym replacement needs the token-embedding table (Synonyms)"
ERROR_NO_PARAPHRASER = "paraphrase needs the causal LM (Paraphraser)"
NO_TRANSLATION_MODEL = (
    "Back-translation needs a translation model (for example Marian English↔German); none is installed, and "
    "nothing may be downloaded from a model hub."
)

# Function words that carry the sentence's structure: never replaced, never offered as replacements.
STOPWORDS = frozenset(
    " ".join(
        (
            "a about above after again against all am an and any are as at be because been before being",
            "below between both but by can could did do does doing down during each few for from further had",
            "has have having he her here hers herself him himself his how i if in into is it its itself just",
            "me more most my myself no nor not now of off on once only or other our ours ourselves out over",
            "own same she should so some such than that the their theirs them themselves then there these",
            "they this those through to too under until up very was we were what when where which while who",
            "whom why will with would you your yours yourself yourselves also may might must shall us per",
            "via yet ever never always",
        )
    ).split()
)

_EDGES = re.compile(r"^(\W*)(.*?)(\W*)$", re.DOTALL)


class AugmentError(ValueError):
    """Rows or options that cannot be augmented, with what is wrong."""


def rng_for(seed: int, source_id: Any, method: str, index: int) -> random.Random:
    """The generator of one augmented row: a string seed is hashed (sha512) the same on every machine and run."""
    return random.Random(f"{seed}:{source_id}:{method}:{index}")


def _split_word(token: str) -> tuple[str, str, str]:
    """(leading punctuation, the word, trailing punctuation) of a whitespace token."""
    match = _EDGES.match(token)
    assert match is not None  # the pattern matches any string
    return match.group(1), match.group(2), match.group(3)


def _replaceable(word: str) -> bool:
    return word.isalpha() and len(word) >= MIN_WORD_LENGTH and word.lower() not in STOPWORDS


def random_edits(text: str, rng: random.Random, *, rate: float = EDIT_RATE) -> str | None:
    """Swap two words, delete words, or repeat a word elsewhere: one of the three, on about `rate` of the words.

    None when the text has fewer than two words (any edit would empty it or change nothing)."""
    words = text.split()
    if len(words) < 2:
        return None
    count = max(1, round(rate * len(words)))
    operation = rng.choice(("swap", "delete", "insert"))
    if operation == "swap":
        for _ in range(count):
            i, j = rng.sample(range(len(words)), 2)
            words[i], words[j] = words[j], words[i]
    elif operation == "delete":
        for _ in range(min(count, len(words) - 1)):
            del words[rng.randrange(len(words))]
    else:
        for _ in range(count):
            words.insert(rng.randrange(len(words) + 1), _split_word(rng.choice(words))[1] or rng.choice(words))
    edited = " ".join(words)
    return edited if edited != " ".join(text.split()) else None


@dataclass
class Synonyms:
    """Nearest whole-word tokens by cosine of their input embeddings; `vectors` rows are unit length."""

    words: list[str]
    vectors: np.ndarray
    k: int = NEIGHBOURS
    min_similarity: float = MIN_SIMILARITY
    _index: dict[str, int] = field(default_factory=dict, repr=False)
    _cache: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._index = {word: i for i, word in enumerate(self.words)}

    def neighbours(self, word: str) -> list[str]:
        """Up to `k` replacements for `word` (lower case), closest first; [] for a word not in the table."""
        key = word.lower()
        if key not in self._cache:
            index = self._index.get(key)
            if index is None:
                self._cache[key] = []
            else:
                scores = self.vectors @ self.vectors[index]
                scores[index] = -1.0
                best = np.argsort(-scores)[: self.k * 3]
                found = [
                    self.words[i]
                    for i in best
                    if scores[i] >= self.min_similarity and not _same_stem(self.words[i], key)
                ]
                self._cache[key] = found[: self.k]
        return self._cache[key]

    @classmethod
    def from_vocabulary(cls, vocabulary: Mapping[str, int], embeddings: np.ndarray, **options: Any) -> Synonyms:
        """The whole-word tokens of a WordPiece vocabulary and their rows of the input embedding matrix."""
        chosen = sorted(
            (index, token)
            for token, index in vocabulary.items()
            if token.isascii() and token.islower() and _replaceable(token) and index < len(embeddings)
        )
        rows = np.asarray(embeddings[[index for index, _ in chosen]], dtype=np.float32)
        rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)
        return cls(words=[token for _, token in chosen], vectors=rows, **options)

    @classmethod
    def from_model_dir(cls, model_dir: Path | str, **options: Any) -> Synonyms:
        """The table of a local encoder folder (loaded with `local_files_only`: never from a hub)."""
        from transformers import AutoModel, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        model = AutoModel.from_pretrained(str(model_dir), local_files_only=True)
        weights = model.get_input_embeddings().weight.detach().float().numpy()
        return cls.from_vocabulary(tokenizer.get_vocab(), weights, **options)


def _same_stem(candidate: str, word: str) -> bool:
    """"cats" for "cat", "walked" for "walk": an inflection is no rewording."""
    shorter, longer = sorted((candidate, word), key=len)
    return longer.startswith(shorter) and len(longer) - len(shorter) <= 3


def synonym_replace(text: str, rng: random.Random, synonyms: Synonyms, *, rate: float = SYNONYM_RATE) -> str | None:
    """Replace about `rate` of the replaceable words by one of their neighbours; None when no word has one."""
    tokens = text.split()
    candidates = []
    for position, token in enumerate(tokens):
        _, word, _ = _split_word(token)
        if _replaceable(word) and synonyms.neighbours(word):
            candidates.append(position)
    if not candidates:
        return None
    count = max(1, round(rate * len(candidates)))
    for position in sorted(rng.sample(candidates, min(count, len(candidates)))):
        lead, word, trail = _split_word(tokens[position])
        replacement = rng.choice(synonyms.neighbours(word))
        if word[:1].isupper():
            replacement = replacement[:1].upper() + replacement[1:]
        tokens[position] = f"{lead}{replacement}{trail}"
    return " ".join(tokens)


def _normalised(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split()).strip(" .!?\"'")


def clean_paraphrase(source: str, answer: str) -> str | None:
    """The model's answer as a paraphrase, or None when it is empty, the source again, or a ramble."""
    text = answer.strip()
    for prefix in ("Rewritten text:", "Rewrite:", "Text:", "Paraphrase:"):
        if text.lower().startswith(prefix.lower()):
            text = text[len(prefix) :].strip()
    text = text.strip("\"“”").strip()
    if not text or _normalised(text) == _normalised(source):
        return None
    if len(text) > PARAPHRASE_MAX_GROWTH * max(len(source), 20):
        return None
    return text


class Paraphraser:
    """The shipped causal LM rewording texts, one seeded sample per text (CPU, float32, eval mode)."""

    def __init__(self, model_dir: Path | str, *, max_new_tokens: int = PARAPHRASE_MAX_NEW_TOKENS) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        self.model = AutoModelForCausalLM.from_pretrained(
            str(model_dir), local_files_only=True, dtype=torch.float32
        ).eval()
        self.max_new_tokens = max_new_tokens

    def __call__(self, text: str, *, seed: int) -> str | None:
        torch = self._torch
        prompt: Any = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": PARAPHRASE_PROMPT.format(text=text)}],
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
        )
        source_tokens = len(self.tokenizer(text)["input_ids"])
        torch.manual_seed(seed)
        with torch.no_grad():
            output = self.model.generate(
                **prompt,
                do_sample=True,
                temperature=0.7,
                top_p=0.9,
                max_new_tokens=min(self.max_new_tokens, 2 * source_tokens + 16),
                pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
            )
        answer = self.tokenizer.decode(output[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True)
        return clean_paraphrase(text, str(answer))


@dataclass(frozen=True)
class Options:
    """What to make: `per_row` rows per method and train row; at most `max_paraphrases` train rows paraphrased."""

    methods: tuple[str, ...]
    per_row: int = 1
    seed: int = 0
    max_paraphrases: int = 200


@dataclass
class Report:
    """Rows made and rows skipped per method (skipped: the method had nothing to change, or the LM failed)."""

    made: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    paraphrase_sources: int = 0


def paraphrase_sources(ids: Sequence[Any], *, seed: int, cap: int) -> set[Any]:
    """Which train rows are paraphrased when there are more than `cap`: a seeded sample, the same for the same ids."""
    if len(ids) <= cap:
        return set(ids)
    return set(random.Random(f"{seed}:paraphrase-sources").sample(sorted(ids), cap))


def augment_rows(
    rows: Iterable[Mapping[str, Any]],
    *,
    text_field: str,
    options: Options,
    synonyms: Synonyms | None = None,
    paraphraser: Callable[..., str | None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[dict[str, Any]], Report]:
    """Augmented rows for the train `rows` (dicts with "id", `text_field`, "split" and the value's keys).

    Each augmented row is its source row with the new text, "augmented_from" (the source id), "method", and a
    "provenance" of its own; its "split" is always "train". Rows come out in source id order, then method,
    then index. A non-train row raises AugmentError: the caller must never hand over validation or test.
    """
    for method in options.methods:
        if method not in METHODS:
            raise AugmentError(ERROR_UNKNOWN_METHOD.format(method=method, methods=", ".join(METHODS)))
    if BACK_TRANSLATION in options.methods:
        raise AugmentError(NO_TRANSLATION_MODEL)
    if SYNONYMS in options.methods and synonyms is None:
        raise AugmentError(ERROR_NO_SYNONYMS)
    if PARAPHRASE in options.methods and paraphraser is None:
        raise AugmentError(ERROR_NO_PARAPHRASER)
    sources = sorted(rows, key=lambda row: row["id"])
    for row in sources:
        if row.get("split") != TRAIN:
            raise AugmentError(ERROR_NOT_TRAIN.format(source=row.get("id"), split=row.get("split")))
    chosen = (
        paraphrase_sources([row["id"] for row in sources], seed=options.seed, cap=options.max_paraphrases)
        if PARAPHRASE in options.methods
        else set()
    )
    report = Report(made=dict.fromkeys(options.methods, 0), skipped=dict.fromkeys(options.methods, 0))
    report.paraphrase_sources = len(chosen)
    total = sum(
        options.per_row * sum(1 for m in options.methods if m != PARAPHRASE or row["id"] in chosen) for row in sources
    )
    out: list[dict[str, Any]] = []
    done = 0
    for row in sources:
        text = row[text_field]
        for method in options.methods:
            if method == PARAPHRASE and row["id"] not in chosen:
                continue
            seen = {_normalised(text)}
            for index in range(options.per_row):
                rng = rng_for(options.seed, row["id"], method, index)
                if method == RANDOM_EDITS:
                    new = random_edits(text, rng)
                elif method == SYNONYMS:
                    assert synonyms is not None
                    new = synonym_replace(text, rng, synonyms)
                else:
                    assert paraphraser is not None
                    new = paraphraser(text, seed=rng.randrange(2**31))
                done += 1
                if new is None or _normalised(new) in seen:
                    report.skipped[method] += 1
                else:
                    seen.add(_normalised(new))
                    report.made[method] += 1
                    out.append(_augmented(row, text_field=text_field, text=new, method=method, index=index,
                                          seed=options.seed))
                if progress is not None:
                    progress(done, total)
    return out, report


def _augmented(
    row: Mapping[str, Any], *, text_field: str, text: str, method: str, index: int, seed: int
) -> dict[str, Any]:
    keep = {key: value for key, value in row.items() if key not in ("id", "external_id", "provenance")}
    return {
        **keep,
        text_field: text,
        "split": TRAIN,
        "augmented_from": row["id"],
        "method": method,
        "provenance": {"source_id": row["id"], "method": method, "index": index, "seed": seed},
    }
