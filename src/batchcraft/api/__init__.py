"""Generated wire code (see scripts/gen_protos.py)."""
