"""``maskwatch models``: the shipped models and their settings."""

from __future__ import annotations


def models() -> None:
    """List the shipped models (size: all of a model's files, its crop classifiers included)."""
    from ..core.registry import available, resolve_model

    for name in available():
        spec = resolve_model(name)
        cls = ", ".join(spec.classifiers) or "-"
        if spec.classifiers:  # which faces it is asked about (classifier_below; a cascade asks the unsure ones)
            below, bare = spec.classifier_below, spec.classifier_below_bare
            asked = "every face" if below > 1 else "none" if below <= 0 else f"faces whose class < {below:g}"
            if 0 < below <= 1 and 0 < bare != below:
                asked += f", < {bare:g} where voted no_mask"
            cls += f" ({asked})"
        st = spec.settings
        band = st.rescue_band()
        if band is not None and st.rescue_classifier:  # masked faces just under the threshold, shown to it
            cls += f"  rescue {st.rescue_classifier} (masked faces scored {band[0]:.3f}-{band[1]:g})"
        print(
            f"{name:8s} {spec.size_bytes / 1e6:5.2f} MB  input {st.input_policy()}  threshold {st.score_threshold}"
            f"  flip {spec.flip}  classifier {cls}  paddlehub {spec.paddlehub_module}"
        )
