"""The ML core, with no Django inside: data, modeling, recipe, metrics, evaluation, artifacts, predict, registry."""
