"""The recipes that rebuild the shipped models (``maskwatch train mobile`` / ``server``)."""

from __future__ import annotations

from .loop import DetectorRecipe

DETECTORS = {
    # mobile: 180k parameters, 0.8 MB, run at 800 px (chosen on validation within the 15 ms budget);
    # the server model re-uses this detector at a larger
    # input with test-time flip and adds a crop classifier (see ClassifierRecipe).
    "mobile": DetectorRecipe(name="mobile", width=1.0, size=320, epochs=24, batch=32, lr=3e-3, seed=0, input_size=800),
}
