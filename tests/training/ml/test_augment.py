"""The pure augmentation code: only train rows, provenance on every row, the same rows for the same seed."""

from __future__ import annotations

import random

import numpy as np
import pytest

from training.ml import augment as ml

ROWS = [
    {"id": 3, "external_id": "c", "text": "The free prize is waiting, call now to claim it", "label": "spam",
     "split": "train"},
    {"id": 1, "external_id": "a", "text": "See you at the cinema tonight, bring the tickets", "label": "ham",
     "split": "train"},
    {"id": 2, "external_id": "b", "text": "Hello", "label": "ham", "split": "train"},
]
VOCAB = {"prize": 0, "award": 1, "reward": 2, "cinema": 3, "theatre": 4, "##ing": 5, "the": 6, "tickets": 7,
         "passes": 8, "prizes": 9, "free": 10}


def table() -> ml.Synonyms:
    # prize ~ award ~ reward ~ prizes; cinema ~ theatre; tickets ~ passes; the rest apart
    vectors = np.zeros((11, 6), dtype=np.float32)
    for index, axis in {0: 0, 1: 0, 2: 0, 9: 0, 3: 1, 4: 1, 7: 2, 8: 2, 5: 3, 6: 4, 10: 5}.items():
        vectors[index, axis] = 1.0
    vectors[1, 1] = vectors[4, 0] = 0.1  # not all equal
    return ml.Synonyms.from_vocabulary(VOCAB, vectors)


def test_the_table_keeps_whole_words_only_and_drops_stopwords_and_inflections():
    synonyms = table()
    assert "##ing" not in synonyms.words and "the" not in synonyms.words
    assert synonyms.neighbours("Prize") == ["reward", "award"]  # closest first; "prizes" is an inflection
    assert synonyms.neighbours("cinema") == ["theatre"]
    assert synonyms.neighbours("unknown") == []


def test_every_augmented_row_is_a_train_row_naming_its_source_and_method():
    options = ml.Options(methods=(ml.RANDOM_EDITS, ml.SYNONYMS), per_row=2, seed=4)
    out, report = ml.augment_rows(ROWS, text_field="text", options=options, synonyms=table())
    assert out, "something was made"
    by_id = {row["id"]: row for row in ROWS}
    for row in out:
        source = by_id[row["augmented_from"]]
        assert row["split"] == "train"
        assert row["label"] == source["label"]
        assert row["method"] in options.methods
        assert row["provenance"] == {"source_id": source["id"], "method": row["method"],
                                     "index": row["provenance"]["index"], "seed": 4}
        assert row["text"] != source["text"]
        assert "id" not in row and "external_id" not in row  # an augmented row is no item
    # "Hello" has one word: nothing to edit, no synonym; skipped and counted, never copied
    assert all(row["augmented_from"] != 2 for row in out)
    assert report.skipped[ml.RANDOM_EDITS] >= 2 and report.skipped[ml.SYNONYMS] >= 2
    assert sum(report.made.values()) == len(out)
    assert [row["augmented_from"] for row in out] == sorted(row["augmented_from"] for row in out)


@pytest.mark.parametrize("split", ["validation", "test", None])
def test_a_row_outside_train_is_refused(split):
    rows = [*ROWS, {"id": 9, "text": "a held out row of text", "label": "ham", "split": split}]
    with pytest.raises(ml.AugmentError, match="only train rows are augmented"):
        ml.augment_rows(rows, text_field="text", options=ml.Options(methods=(ml.RANDOM_EDITS,)))


def test_the_same_seed_gives_the_same_rows_and_a_row_does_not_depend_on_the_others():
    options = ml.Options(methods=(ml.RANDOM_EDITS, ml.SYNONYMS), per_row=3, seed=11)
    first, _ = ml.augment_rows(ROWS, text_field="text", options=options, synonyms=table())
    again, _ = ml.augment_rows(list(reversed(ROWS)), text_field="text", options=options, synonyms=table())
    alone, _ = ml.augment_rows(ROWS[:1], text_field="text", options=options, synonyms=table())
    assert first == again
    assert alone == [row for row in first if row["augmented_from"] == 3]
    other, _ = ml.augment_rows(ROWS, text_field="text", options=ml.Options(options.methods, 3, seed=12),
                               synonyms=table())
    assert other != first


def test_synonym_replacement_uses_neighbours_and_keeps_punctuation_and_capitals():
    text = "Prize: cinema tickets!"
    new = ml.synonym_replace(text, random.Random(0), table(), rate=1.0)
    assert new is not None
    words = new.split()
    assert words[0] in ("Award:", "Reward:")
    assert words[1] == "theatre" and words[2] == "passes!"


def test_random_edits_change_the_words_not_the_vocabulary():
    text = "one two three four five six seven eight nine ten"
    for seed in range(20):
        new = ml.random_edits(text, random.Random(seed))
        assert new is not None and new != text
        assert set(new.split()) <= set(text.split())
    assert ml.random_edits("alone", random.Random(0)) is None


def test_paraphrase_is_capped_by_a_seeded_sample_and_each_call_gets_its_own_seed():
    calls: list[tuple[str, int]] = []

    def fake(text: str, *, seed: int) -> str:
        calls.append((text, seed))
        return f"In other words: {text}"

    rows = [{"id": i, "prompt": f"question number {i}", "response": "x", "split": "train"} for i in range(10)]
    options = ml.Options(methods=(ml.PARAPHRASE,), seed=1, max_paraphrases=4)
    out, report = ml.augment_rows(rows, text_field="prompt", options=options, paraphraser=fake)
    assert len(out) == 4 == report.paraphrase_sources == len(calls)
    assert {row["augmented_from"] for row in out} == ml.paraphrase_sources(list(range(10)), seed=1, cap=4)
    assert all(row["response"] == "x" and row["prompt"].startswith("In other words") for row in out)
    again, _ = ml.augment_rows(rows, text_field="prompt", options=options, paraphraser=fake)
    assert calls[:4] == calls[4:] and again == out


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('"You won a prize, phone us."', "You won a prize, phone us."),
        ("Rewritten text: You won a prize, phone us.", "You won a prize, phone us."),
        ("You have WON a prize!", None),  # the source again, up to case and punctuation
        ("   ", None),
        ("word " * 200, None),  # a ramble
    ],
)
def test_a_paraphrase_is_cleaned_or_dropped(answer, expected):
    assert ml.clean_paraphrase("You have won a prize", answer) == expected


def test_back_translation_and_unknown_methods_are_refused_plainly():
    with pytest.raises(ml.AugmentError, match="translation model"):
        ml.augment_rows(ROWS, text_field="text", options=ml.Options(methods=(ml.BACK_TRANSLATION,)))
    with pytest.raises(ml.AugmentError, match="unknown augmentation method 'wordnet'"):
        ml.augment_rows(ROWS, text_field="text", options=ml.Options(methods=("wordnet",)))
    with pytest.raises(ml.AugmentError, match="token-embedding table"):
        ml.augment_rows(ROWS, text_field="text", options=ml.Options(methods=(ml.SYNONYMS,)))
