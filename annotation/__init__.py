"""The annotation app: projects, imports, blind annotation, review, quality and datasets, one package each."""
