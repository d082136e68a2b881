"""Where things are, independent of how deep a test module sits."""
from pathlib import Path

# The project: where app.py, worker.py, .importlinter and phoneapp/ are.
ROOT = Path(__file__).resolve().parents[2]
