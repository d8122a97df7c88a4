"""The model card: an artifact's README.md, as a model hub shows it, written from its run.json alone.

It says what someone taking the model elsewhere must know: the base model by a portable name and the hash of its
weights, the data (snapshot hash, split sizes, label counts), the test figures with their intervals beside the
baselines and the verdict, the training settings, what the model is for and where its figures stop meaning much,
and a plain transformers + peft snippet that loads it without Labelloop (tests/training/ml/test_artifacts.py runs
that very snippet in a clean interpreter). Every key beyond the spec may be absent (runs saved before baselines,
intervals and the verdict existed, cancelled runs with no test figures): the card then says what is missing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from training.spec import METHOD_FULL, TASK_CLASSIFICATION

CARD_FILE = "README.md"

# The snippet's two lines a user edits; a test finds them by these names.
BASE_MODEL_VARIABLE = "BASE_MODEL"
MODEL_DIR_VARIABLE = "MODEL_DIR"
MODEL_DIR_PLACEHOLDER = "path/to/this/folder"
SNIPPET_HEADING = "## Load it with transformers and peft"

HEADLINE = {TASK_CLASSIFICATION: ("accuracy", "macro_f1")}
GENERATION_HEADLINE = ("rouge_l", "bleu")
PIPELINE_TAG = {TASK_CLASSIFICATION: "text-classification"}
GENERATION_PIPELINE_TAG = "text-generation"

# Below this many test items a 95% interval on accuracy is several points wide (about ±0.02 at 1,000 items and
# an accuracy of 0.9, ±0.06 at 100): the card says so next to the figures.
SMALL_TEST_ITEMS = 1000
# Per-label precision and recall on fewer test items than this are anecdotes.
FEW_PER_LABEL = 30

ADAPTER_WORDS = {"lora": "a LoRA adapter", "ia3": "an IA3 adapter", METHOD_FULL: "the whole model, fine-tuned"}

VERDICTS = {
    "better": "Better than the best baseline",
    "not_better": "Not better than the best baseline",
    "too_small_to_tell": "Too few test items to tell whether it beats the best baseline",
}


def model_card(info: Mapping[str, Any]) -> str:
    sections = [
        _front_matter(info),
        _summary(info),
        _base_model(info),
        _data(info),
        _results(info),
        _configuration(info),
        _use_and_limits(info),
        _loading(info),
        _versions(info),
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


def _headline(task: str) -> tuple[str, ...]:
    return HEADLINE.get(task, GENERATION_HEADLINE)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _figure(value: float) -> str:
    """Three decimals, as the run page shows them (a perplexity in the thousands needs none)."""
    return f"{value:.3f}" if abs(value) < 1000 else f"{value:,.0f}"


def _interval(interval: Any) -> str:
    if isinstance(interval, Sequence) and len(interval) == 2 and all(_number(v) for v in interval):
        return f"[{_figure(interval[0])}, {_figure(interval[1])}]"
    return ""


def _base_name(info: Mapping[str, Any]) -> str:
    base = info["base_model"]
    return str(base.get("portable_name") or base["name"])


def _front_matter(info: Mapping[str, Any]) -> str:
    """YAML the hub reads; values are JSON strings, which YAML reads as they are."""
    base = info["base_model"]
    fields: dict[str, Any] = {}
    if base.get("hub_id"):
        fields["base_model"] = base["hub_id"]
    fields["library_name"] = "transformers" if info["method"] == METHOD_FULL else "peft"
    fields["pipeline_tag"] = PIPELINE_TAG.get(info["task"], GENERATION_PIPELINE_TAG)
    if base.get("license"):
        fields["license"] = base["license"]
    lines = ["---", *(f"{key}: {json.dumps(value)}" for key, value in fields.items())]
    lines += ["tags:", *(f"- {json.dumps(tag)}" for tag in ("labelloop", info["method"])), "---"]
    return "\n".join(lines)


def _summary(info: Mapping[str, Any]) -> str:
    task = "Text classifier" if info["task"] == TASK_CLASSIFICATION else "Instruction-following model"
    parameters = info["parameters"]
    what = ADAPTER_WORDS.get(info["method"], f"a {info['method']} adapter")
    lines = [
        f"# {task} fine-tuned from {_base_name(info)}",
        "",
        f"Trained with Labelloop: {what} ({parameters['trainable']:,} of {parameters['total']:,} parameters "
        f"trained), saved {info.get('saved_at', 'at an unknown time')}.",
    ]
    if info["labels"]:
        lines.append(f"It labels a text as one of {len(info['labels'])}: {', '.join(info['labels'])}.")
    else:
        lines.append("It answers a user message (one turn, through the chat template saved with its tokenizer).")
    return "\n".join(lines)


def _base_model(info: Mapping[str, Any]) -> str:
    base = info["base_model"]
    lines = ["## Base model", ""]
    if base.get("hub_id"):
        lines.append(f"- `{base['hub_id']}` on the Hugging Face hub (Labelloop name `{base['name']}`)")
    else:
        lines.append(f"- `{_base_name(info)}`: a local model with no hub id known to Labelloop")
    if base.get("origin"):
        lines.append(f"- Found by Labelloop in {base['origin']}")
    if base.get("license"):
        lines.append(f"- Licence: {base['license']}")
    hashes: Mapping[str, str] = base.get("weights_sha256") or {}
    lines += [f"- `{file}` sha256 `{sha256}`" for file, sha256 in hashes.items()]
    if not hashes:
        lines.append("- The hash of its weights was not recorded (saved before Labelloop recorded it).")
    if base.get("caveat"):
        lines += ["", base["caveat"]]
    return "\n".join(lines)


def _label_counts(counts: Any) -> str:
    if not isinstance(counts, Mapping) or not counts:
        return ""
    total = sum(counts.values()) or 1
    return ", ".join(f"{label} {count} ({count / total:.0%})" for label, count in counts.items())


def _data(info: Mapping[str, Any]) -> str:
    lines = [
        "## Training data",
        "",
        f"Labelloop snapshot `{info['snapshot_hash']}` (a hash of its items, final labels and splits: the same "
        "hash means the same data).",
    ]
    augmentation: Mapping[str, Any] | None = info.get("augmentation")
    if augmentation:
        options = augmentation.get("options") or {}
        lines += [
            "",
            f"Augmented: {augmentation.get('rows', 0)} rows made from the snapshot's train rows "
            f"({', '.join(options.get('methods', []))}; {options.get('per_row', 1)} per method and row, seed "
            f"{options.get('seed', 0)}) were added to train, augmentation `{augmentation.get('content_hash', '')}`. "
            "Validation and test are the snapshot's own rows.",
        ]
    splits: Mapping[str, Any] = info.get("splits") or {}
    if splits:
        labelled = bool(info["labels"])
        header = "| split | items | labels |\n|---|---|---|" if labelled else "| split | items |\n|---|---|"
        lines += ["", header]
        for name in ("train", "validation", "test"):
            if name in splits:
                summary = splits[name]
                counts = f" {_label_counts(summary.get('labels'))} |" if labelled else ""
                lines.append(f"| {name} | {summary['n']} |{counts}")
        if "test" not in splits:
            lines += ["", "No test split was evaluated."]
        lines += ["", "Train counts are after any class balancing the snapshot asked for."]
    else:
        lines += ["", "Split sizes were not recorded (saved before Labelloop recorded them)."]
    return "\n".join(lines)


def _results(info: Mapping[str, Any]) -> str:
    metrics: Mapping[str, Any] = info.get("metrics") or {}
    figures = {name: value for name, value in metrics.items() if _number(value) and name != "n"}
    if not figures:
        return (
            "## Test results\n\nNone: this model was not evaluated on a test split (the run was cancelled, or its "
            "snapshot has no test split), so nothing here says how well it does."
        )
    headline = _headline(info["task"])
    intervals: Mapping[str, Any] = metrics.get("intervals") or {}
    lines = ["## Test results", "", f"On {metrics.get('n', '?')} test items."]
    lines.append(
        "Intervals are 95% bootstrap intervals over the test items."
        if intervals
        else "No confidence intervals were computed for this run (saved before Labelloop computed them)."
    )
    order = [name for name in headline if name in figures] + sorted(set(figures) - set(headline))
    lines += ["", "| metric | value | 95% interval |", "|---|---|---|"]
    lines += [f"| {name} | {_figure(figures[name])} | {_interval(intervals.get(name))} |" for name in order]
    per_class = metrics.get("per_class")
    if isinstance(per_class, Mapping) and per_class:
        lines += ["", "| label | precision | recall | f1 | test items |", "|---|---|---|---|---|"]
        lines += [
            f"| {label} | {_figure(c['precision'])} | {_figure(c['recall'])} | {_figure(c['f1'])} | {c['support']} |"
            for label, c in per_class.items()
        ]
    lines += ["", *_baselines(metrics, headline)]
    lines += _slices(metrics.get("slices"))
    return "\n".join(lines)


def _slices(report: Any) -> list[str]:
    """The flagged slices (training/ml/slices.py), when the run was evaluated per slice: where the model is weak."""
    if not isinstance(report, Mapping) or not report.get("fields"):
        return []
    fields = ", ".join(str(f["field"]) for f in report["fields"])
    lines = ["", "### Slices", "", f"Figures per value of: {fields}. {report.get('rule', '')}".rstrip(), ""]
    flagged = [
        (f["field"], entry) for f in report["fields"] for entry in f["values"] if entry.get("status") == "flagged"
    ]
    if not flagged:
        return [*lines, "No slice was flagged."]
    lines += ["| field | slice | test items | why it is flagged |", "|---|---|---|---|"]
    lines += [
        f"| {field} | {entry['value']} | {entry['support']} | {'; '.join(entry.get('reasons', []))} |"
        for field, entry in flagged
    ]
    return lines


def _baselines(metrics: Mapping[str, Any], headline: Sequence[str]) -> list[str]:
    baselines: Mapping[str, Any] = metrics.get("baselines") or {}
    if not baselines:
        return ["### Baselines", "", "None were computed for this run."]
    lines = [
        "### Baselines",
        "",
        "Simpler models fitted on the same train split (settings chosen on validation), scored on the same test items.",
        "",
        "| baseline | " + " | ".join(headline) + " | what it is | chosen on validation |",
        "|---|" + "---|" * (len(headline) + 2),
    ]
    for name, baseline in baselines.items():
        intervals = baseline.get("intervals") or {}
        cells = [
            f"{_figure(baseline[m])} {_interval(intervals.get(m))}".strip() if _number(baseline.get(m)) else "—"
            for m in headline
        ]
        chosen = ", ".join(f"{key}={value}" for key, value in (baseline.get("chosen") or {}).items())
        lines.append(f"| {name} | {' | '.join(cells)} | {baseline.get('method', '')} | {chosen} |")
    comparison = metrics.get("comparison")
    lines.append("")
    if isinstance(comparison, Mapping) and comparison.get("verdict"):
        verdict = VERDICTS.get(comparison["verdict"], comparison["verdict"])
        lines.append(f"**Verdict: {verdict}.** {comparison.get('message', '')}".rstrip())
        if _number(comparison.get("difference")):
            lines.append(
                f"{comparison.get('metric')} of this model minus {comparison.get('best_baseline')}: "
                f"{comparison['difference']:+.3f} {_interval(comparison.get('difference_interval'))}".rstrip()
            )
    else:
        lines.append("No verdict against the baselines was recorded for this run (saved before Labelloop made one).")
    return lines


def _configuration(info: Mapping[str, Any]) -> str:
    spec = info["spec"]
    if info["method"] == METHOD_FULL:
        method = f"full fine-tuning, embeddings and the lowest {spec['freeze_layers']} layers frozen"
        if spec.get("student_layers"):
            method += (
                f"; a smaller model: {spec['student_layers']} of the base model's layers kept (spread evenly from the "
                "bottom), so this folder is the whole model and does not need the base model's weights"
            )
    elif info["method"] == "lora":
        method = f"LoRA r={spec['lora_r']}, alpha={spec['lora_alpha']}, dropout={spec['lora_dropout']}"
    else:
        method = info["method"].upper()
    targets = spec.get("target_modules")
    lines = [
        "## Training configuration",
        "",
        f"- Method: {method}" + (f", on {', '.join(targets)}" if targets and info["method"] != METHOD_FULL else ""),
        f"- Epochs {spec['epochs']}, learning rate {spec['learning_rate']} ({spec['lr_scheduler']}, warmup ratio "
        f"{spec['warmup_ratio']}), weight decay {spec['weight_decay']}, gradient clipping {spec['max_grad_norm']}",
        f"- Batch {spec['batch_size']} × {spec['grad_accum']} accumulation steps, max length {spec['max_length']} "
        f"tokens, seed {spec['seed']}",
    ]
    if spec.get("early_stopping_patience"):
        lines.append(
            f"- Early stopping on validation {spec['early_stopping_metric']} (patience "
            f"{spec['early_stopping_patience']}); the best validation weights are the ones saved"
        )
    if spec.get("class_weights"):
        lines.append(f"- Class weights: {', '.join(f'{k} {v}' for k, v in spec['class_weights'].items())}")
    if spec.get("curriculum", "none") != "none":
        lines.append(f"- Curriculum: {spec['curriculum']}")
    lines.append("- Every setting: `spec` in run.json")
    return "\n".join(lines)


def _use_and_limits(info: Mapping[str, Any]) -> str:
    metrics: Mapping[str, Any] = info.get("metrics") or {}
    lines = ["## Intended use and limits", ""]
    if info["labels"]:
        lines.append(
            f"- For labelling texts like those of the training snapshot. It always answers one of its "
            f"{len(info['labels'])} labels, even for a text unlike anything it saw."
        )
    else:
        lines.append("- For answering prompts like those of the training snapshot; its answers are not checked facts.")
    n = metrics.get("n")
    if not isinstance(n, int) or n == 0:
        lines.append("- It has no test figures: judge it on your own data before relying on it.")
    elif n < SMALL_TEST_ITEMS:
        lines.append(
            f"- The test split has only {n} items: the figures are uncertain by about the width of their "
            "intervals, and a difference smaller than that between two models is no difference."
        )
    per_class = metrics.get("per_class")
    if isinstance(per_class, Mapping):
        few = [f"{label} ({c['support']})" for label, c in per_class.items() if c.get("support", 0) < FEW_PER_LABEL]
        if few:
            lines.append(f"- Per-label figures rest on fewer than {FEW_PER_LABEL} test items for: {', '.join(few)}.")
    if info["task"] != TASK_CLASSIFICATION:
        lines.append(
            "- ROUGE-L (0 to 1) and BLEU (0 to 100) count words shared with one reference answer: on short answers "
            "a rewording moves them a lot, and neither says whether an answer is right."
        )
    caveat = info["base_model"].get("caveat")
    if caveat:
        lines.append(f"- {caveat}")
    lines.append("- The figures hold for data like the snapshot's; text from elsewhere may fare worse.")
    return "\n".join(lines)


def _loading(info: Mapping[str, Any]) -> str:
    spec = info["spec"]
    base_note = (
        "the hub id, or the folder of your copy (check its sha256 above)"
        if info["base_model"].get("hub_id")
        else "the folder of your copy of the base model (check its sha256 above)"
    )
    head = [
        "import torch",
        "from peft import PeftModel" if info["method"] != METHOD_FULL else "",
    ]
    if info["task"] == TASK_CLASSIFICATION:
        head.append("from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer")
    else:
        head.append("from transformers import AutoModelForCausalLM, AutoTokenizer")
    code = [line for line in head if line] + [""]
    if info["method"] != METHOD_FULL:
        code.append(f"{BASE_MODEL_VARIABLE} = {json.dumps(_base_name(info))}  # {base_note}")
    code += [f'{MODEL_DIR_VARIABLE} = "{MODEL_DIR_PLACEHOLDER}"', ""]
    code += _classification_code(info, spec) if info["task"] == TASK_CLASSIFICATION else _generation_code(info, spec)
    intro = (
        "The folder loads with plain transformers and peft; Labelloop is not needed."
        if info["method"] != METHOD_FULL
        else "The folder is a complete transformers model; Labelloop is not needed."
    )
    return "\n".join(
        [
            SNIPPET_HEADING,
            "",
            intro,
            "",
            "```python",
            *code,
            "```",
            "",
            "In Labelloop: `Predictor.load(folder).classify(texts)` or `.generate(prompts)` (training/ml/predict.py).",
        ]
    )


def _classification_code(info: Mapping[str, Any], spec: Mapping[str, Any]) -> list[str]:
    if info["method"] == METHOD_FULL:
        load = [
            f"model = AutoModelForSequenceClassification.from_pretrained({MODEL_DIR_VARIABLE}, dtype=torch.float32)",
            "model.eval()",
            "config = model.config",
        ]
    else:
        load = [
            "# The base model's config with this model's id2label and label2id",
            f"config = AutoConfig.from_pretrained({MODEL_DIR_VARIABLE})",
            "# transformers warns that the classifier is newly initialised: the adapter folder holds the trained one",
            f"base = AutoModelForSequenceClassification.from_pretrained({BASE_MODEL_VARIABLE}, config=config, "
            "dtype=torch.float32)",
            f"model = PeftModel.from_pretrained(base, {MODEL_DIR_VARIABLE}).eval()",
        ]
    return [
        f"tokenizer = AutoTokenizer.from_pretrained({MODEL_DIR_VARIABLE})",
        *load,
        "",
        "",
        "def classify(texts):",
        '    """One {label: probability} per text."""',
        f"    inputs = tokenizer(texts, padding=True, truncation=True, max_length={spec['max_length']}, "
        'return_tensors="pt")',
        "    with torch.no_grad():",
        "        probabilities = model(**inputs).logits.softmax(-1).tolist()",
        "    return [{config.id2label[i]: p for i, p in enumerate(row)} for row in probabilities]",
        "",
        "",
        'print(classify(["an example text"]))',
    ]


def _generation_code(info: Mapping[str, Any], spec: Mapping[str, Any]) -> list[str]:
    if info["method"] == METHOD_FULL:
        load = [f"model = AutoModelForCausalLM.from_pretrained({MODEL_DIR_VARIABLE}, dtype=torch.float32).eval()"]
    else:
        load = [
            f"base = AutoModelForCausalLM.from_pretrained({BASE_MODEL_VARIABLE}, dtype=torch.float32)",
            f"model = PeftModel.from_pretrained(base, {MODEL_DIR_VARIABLE}).eval()",
        ]
    return [
        "# The tokenizer as trained, with its chat template",
        f"tokenizer = AutoTokenizer.from_pretrained({MODEL_DIR_VARIABLE})",
        *load,
        "",
        "",
        f"def reply(prompt, max_new_tokens={spec['max_new_tokens']}):",
        '    """The greedy answer to one user message."""',
        "    inputs = tokenizer.apply_chat_template(",
        '        [{"role": "user", "content": prompt}], add_generation_prompt=True, return_dict=True, '
        'return_tensors="pt"',
        "    )",
        "    with torch.no_grad():",
        "        output = model.generate(",
        "            **inputs,",
        "            max_new_tokens=max_new_tokens,",
        "            do_sample=False,",
        "            pad_token_id=tokenizer.pad_token_id,",
        "            eos_token_id=tokenizer.eos_token_id,",
        "        )",
        '    return tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()',
        "",
        "",
        'print(reply("an example question"))',
    ]


def _versions(info: Mapping[str, Any]) -> str:
    versions: Mapping[str, str] = info.get("versions") or {}
    return "## Versions\n\nSaved with " + ", ".join(f"{name} {ver}" for name, ver in sorted(versions.items())) + "."
