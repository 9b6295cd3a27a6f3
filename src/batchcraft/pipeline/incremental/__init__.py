"""Curation against existing curated datasets (``--against``): the predecessors read and
checked before Spark starts (`predecessors`); their rows in each dedup stage (`stage`)."""
