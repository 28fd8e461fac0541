"""Validation pictures changed on purpose (evaluation/variants.py): turned pictures keep their boxes on
their faces, drawn coverings hide the face's top and eyes and count only the covered faces, a close-up
enlarges the largest face and counts it alone; the fixed
held-out parts of the sets without a split are the same every time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from maskwatch.evaluation.datasets import Sample, holdout, in_holdout
from maskwatch.evaluation.variants import (
    CLOSE_UP_FILL,
    CLOSE_UP_PX,
    COVERINGS,
    MIN_CLOSE_UP_PX,
    MIN_COVERED_PX,
    close_up,
    cover,
    cover_sample,
    rotate,
)


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


def test_a_close_up_enlarges_the_largest_face_and_counts_it_alone():
    img, _ = _picture_with_a_square(60, 40, 140, 120, size=(200, 300))  # an 80 px white face
    img[150:170, 10:30] = 255  # and a 20 px one
    boxes = np.array([[10, 150, 30, 170], [60, 40, 140, 120]], np.float32)
    s = Sample(Path("p.jpg"), boxes, np.array([0, 1]))
    s2, out = close_up(s, img)
    assert s2.ignore.tolist() == [True, False]  # the small face is not counted
    x1, y1, x2, y2 = s2.boxes[1]
    assert CLOSE_UP_PX[0] - 1 <= y2 - y1 <= CLOSE_UP_PX[1] + 1  # enlarged to a close-up's size
    assert CLOSE_UP_FILL[0] - 0.01 <= (y2 - y1) / out.shape[0] <= CLOSE_UP_FILL[1] + 0.01  # filling the picture
    assert abs(out.shape[1] / out.shape[0] - 1.5) < 0.02  # the picture's own shape
    m = int(0.1 * (y2 - y1))  # past the enlarged edge's blur
    inside = out[int(y1) + m : int(y2) - m, int(x1) + m : int(x2) - m]
    assert inside.size and inside.min() > 200  # the box holds the (white) face
    assert np.array_equal(close_up(s, img)[1], out)  # the same cut on every run
    tiny = Sample(
        Path("q.jpg"), np.array([[0, 0, MIN_CLOSE_UP_PX - 1, MIN_CLOSE_UP_PX - 1]], np.float32), np.array([0])
    )
    assert close_up(tiny, img) is None  # nothing big enough to enlarge


def test_held_out_parts_are_fixed_by_name():
    samples = [Sample(Path(f"img{i}.jpg"), np.zeros((0, 4)), np.zeros(0)) for i in range(400)]
    val = holdout(samples, 0.25)
    rest = holdout(samples, 0.25, part="train")
    assert len(val) + len(rest) == 400 and 70 < len(val) < 130
    assert {s.image for s in val}.isdisjoint({s.image for s in rest})
    assert [s.image for s in holdout(list(reversed(samples)), 0.25)] == [s.image for s in reversed(val)]
    assert in_holdout(Path("/other/folder/img3.jpg"), 0.25) == in_holdout(Path("img3.jpg"), 0.25)
