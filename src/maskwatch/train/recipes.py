"""The recipes that rebuild the shipped models (``maskwatch train mobile`` / ``server``)."""

from __future__ import annotations

from .loop import DetectorRecipe

DETECTORS = {
    # stage 1: 180k parameters, 0.8 MB, from scratch on 320 px crops
    "mobile-base": DetectorRecipe(name="mobile-base", width=1.0, size=320, epochs=24, batch=32, lr=3e-3, seed=0, input_size=800),
    # stage 2 (what ships as mobile): continues stage 1 on larger crops at a lower rate, with masks
    # (right, below the nose, on the chin) and hands drawn on bare and unlabelled faces, so the
    # class head sees every kind of mask and WIDER's crowds teach it too. Run at 800 px (chosen on
    # validation within the 15 ms budget); the server model runs this detector at 960 px with
    # test-time flip and re-labels its faces with the crop classifier (see ClassifierRecipe).
    "mobile": DetectorRecipe(name="mobile", width=1.0, size=384, epochs=10, batch=32, lr=1e-3, seed=1, input_size=800,
                             init_from="mobile-base", paste=0.25, val_every=5),
}
