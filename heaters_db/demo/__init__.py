"""`heaters-db demo`: the whole pipeline on synthetic sample clips (see run.py)."""
