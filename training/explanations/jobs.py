"""The explanation job (queue "quality": short, never behind a training run): load → claim → call → finish/fail.

Safe to deliver twice: the claim is a conditional UPDATE queued → running. The serving code (which imports torch)
is imported inside the job, so the worker's parent process never loads torch.
"""

from __future__ import annotations

from training.explanations import selectors, services


def explanation_job(explanation_id: int) -> None:
    """Explain the item of explanation `explanation_id` with its run's model and store the result."""
    explanation = services.explanation_claim(explanation_id=explanation_id)
    if explanation is None:
        return
    output = explanation.run.outputs.select_related("item", "run").filter(item=explanation.item).first()
    try:
        if output is None:
            raise ValueError("the run has no output for this item any more")
        text, response = selectors.explained_text(output)
        from training.runs import serving

        result = serving.explain(explanation.run, text, response=response)
    except Exception as exc:
        services.explanation_fail(explanation=explanation, error=f"{exc}")
        raise
    services.explanation_finish(explanation=explanation, result=result)
