"""Validation pictures changed on purpose (evaluation/variants.py): turned pictures keep their boxes on
their faces, drawn coverings hide the face's top and eyes and count only the covered faces; the fixed
held-out parts of the sets without a split are the same every time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from maskwatch.evaluation.datasets import Sample, holdout, in_holdout
from maskwatch.evaluation.variants import COVERINGS, MIN_COVERED_PX, cover, cover_sample, rotate


def _picture_with_a_square(x1=60, y1=40, x2=100, y2=80, size=(160, 200)):
    img = np.zeros((*size, 3), np.uint8)
    img[y1:y2, x1:x2] = 255
    return img, np.array([[x1, y1, x2, y2]], np.float32)


@pytest.mark.parametrize("angle", [90, 180, 270, 30, -45])
def test_a_turned_box_still_holds_its_face(angle):
    img, boxes = _picture_with_a_square()
    out, new = rotate(img, boxes, angle)
    ys, xs = np.nonzero(out[..., 0] > 128)
    x1, y1, x2, y2 = new[0]
    assert xs.min() >= x1 - 1.5 and xs.max() <= x2 + 1.5 and ys.min() >= y1 - 1.5 and ys.max() <= y2 + 1.5
    if angle % 90 == 0:  # a quarter turn keeps the box tight and the picture's pixels
        assert (x2 - x1) * (y2 - y1) == pytest.approx(1600, abs=2) and out.size == img.size


def test_coverings_hide_the_top_or_the_eyes_and_only_the_covered_faces_count():
    img = np.full((200, 300, 3), 128, np.uint8)
    face = np.array([100, 50, 180, 150], np.float32)
    for kind in COVERINGS:
        out = img.copy()
        cover(out, face, kind, (10, 10, 200))
        changed = np.any(out != img, axis=2)
        top = changed[50:100, 100:180].mean()
        assert top > 0.1, kind  # the forehead or the eyes are covered
        assert not changed[140:150, 130:150].all(), kind  # the mouth and the mask stay visible
    with pytest.raises(ValueError, match="covering"):
        cover(img.copy(), face, "scarf", (0, 0, 0))
    small = [10, 10, 10 + MIN_COVERED_PX - 4, 10 + MIN_COVERED_PX - 4]
    s = Sample(Path("p.jpg"), np.array([face, small]), np.array([0, 1]))
    s2, out, covered = cover_sample(s, img)
    assert covered.tolist() == [True, False] and s2.ignore.tolist() == [False, True]
    again = cover_sample(s, img)[1]
    assert np.array_equal(out, again)  # the same drawing on every run


def test_held_out_parts_are_fixed_by_name():
    samples = [Sample(Path(f"img{i}.jpg"), np.zeros((0, 4)), np.zeros(0)) for i in range(400)]
    val = holdout(samples, 0.25)
    rest = holdout(samples, 0.25, part="train")
    assert len(val) + len(rest) == 400 and 70 < len(val) < 130
    assert {s.image for s in val}.isdisjoint({s.image for s in rest})
    assert [s.image for s in holdout(list(reversed(samples)), 0.25)] == [s.image for s in reversed(val)]
    assert in_holdout(Path("/other/folder/img3.jpg"), 0.25) == in_holdout(Path("img3.jpg"), 0.25)
