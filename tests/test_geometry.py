import numpy as np
import pytest

from maskwatch.core.geometry import (
    anchor_points,
    class_vote,
    clip_boxes,
    distances_to_boxes,
    expand_boxes,
    iou_matrix,
    nms,
    weighted_box_merge,
)


def test_anchor_points_cover_each_level_row_major():
    pts = anchor_points(64, 96, (8, 16, 32))
    assert pts.shape == (8 * 12 + 4 * 6 + 2 * 3, 3)
    assert pts[0].tolist() == [4.0, 4.0, 8.0]
    assert pts[1].tolist() == [12.0, 4.0, 8.0]  # next column first
    assert pts[12].tolist() == [4.0, 12.0, 8.0]  # then next row
    first16 = 8 * 12
    assert pts[first16].tolist() == [8.0, 8.0, 16.0]
    assert pts[-1].tolist() == [80.0, 48.0, 32.0]


def test_distances_to_boxes():
    pts = np.array([[10, 20, 8], [50, 50, 16]], np.float32)
    d = np.array([[1, 2, 3, 4], [10, 10, 20, 5]], np.float32)
    assert distances_to_boxes(pts, d).tolist() == [[9, 18, 13, 24], [40, 40, 70, 55]]


def test_iou_matrix_hand_computed():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    iou = iou_matrix(a, b)
    assert iou.shape == (2, 3)
    assert iou[0, 0] == pytest.approx(1.0)
    assert iou[0, 1] == pytest.approx(50 / 150)
    assert iou[0, 2] == 0.0


def test_iou_of_degenerate_box_is_zero():
    assert iou_matrix([[0, 0, 0, 0]], [[0, 0, 0, 0]])[0, 0] == 0.0


def test_nms_keeps_best_of_overlapping_and_separate_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 9]], np.float32)
    scores = np.array([0.8, 0.9, 0.5, 0.3], np.float32)
    keep = nms(boxes, scores, 0.5)
    assert keep.tolist() == [1, 2]


def test_nms_threshold_is_respected():
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10]], np.float32)  # IoU 1/3
    assert len(nms(boxes, np.array([0.9, 0.8]), 0.3)) == 1
    assert len(nms(boxes, np.array([0.9, 0.8]), 0.4)) == 2


def test_nms_empty():
    assert nms(np.zeros((0, 4)), np.zeros(0)).tolist() == []


def test_weighted_merge_averages_votes():
    boxes = np.array([[0, 0, 10, 10], [2, 0, 12, 10]], np.float32)
    scores = np.array([1.0, 1.0], np.float32)
    merged = weighted_box_merge(boxes, scores, np.array([0]), 0.3)
    assert merged[0].tolist() == [1, 0, 11, 10]


def _many_candidates(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """700 random candidates (a crowd's worth) and the more than 256 (one block) that NMS keeps."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 500, (700, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + rng.uniform(8, 40, (700, 2)).astype(np.float32)], 1)
    scores = rng.uniform(0.05, 1, 700).astype(np.float32)
    probs = rng.dirichlet(np.ones(3), 700).astype(np.float32)
    keep = nms(boxes, scores, 0.45)
    assert len(keep) > 256  # more than one block
    return boxes, scores, probs, keep


def test_weighted_box_merge_of_many_boxes_matches_the_whole_matrix():
    """Merged in blocks of rows (a crowd's thousands of candidates): the same as one IoU matrix."""
    boxes, scores, probs, keep = _many_candidates(0)
    w = (iou_matrix(boxes[keep], boxes) > 0.45) * scores[None, :]
    w = w / w.sum(1, keepdims=True)
    got_boxes, got_probs = weighted_box_merge(boxes, scores, keep, 0.45, probs)
    assert np.allclose(got_boxes, w @ boxes, atol=1e-4) and np.allclose(got_probs, w @ probs, atol=1e-6)
    assert np.allclose(weighted_box_merge(boxes, scores, keep, 0.45), got_boxes)


def test_expand_boxes_square_about_centre():
    out = expand_boxes(np.array([[10, 20, 30, 60]], np.float32), 1.5)
    assert out[0].tolist() == [-10, 10, 50, 70]


def test_clip_boxes():
    assert clip_boxes([[-5, -5, 120, 50]], 100, 40)[0].tolist() == [0, 0, 100, 40]


def test_tiles_cover_the_picture_with_overlap():
    from maskwatch.core.detector import tiles

    assert tiles(640, 480, 640) == []
    t = tiles(4000, 3000, 640)
    covered = np.zeros((3000, 4000), bool)
    for x0, y0, x1, y1 in t:
        assert x1 - x0 <= 640 and y1 - y0 <= 640
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    assert t[1][0] - t[0][0] == 480  # 25 % overlap


def test_weighted_merge_also_averages_extra_rows():
    boxes = np.array([[0, 0, 10, 10], [2, 0, 12, 10], [50, 50, 60, 60]], np.float32)
    scores = np.array([3.0, 1.0, 1.0], np.float32)
    probs = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
    b, p = weighted_box_merge(boxes, scores, np.array([0, 2]), 0.3, probs)
    assert b[0].tolist() == [0.5, 0, 10.5, 10]
    assert p.tolist() == [[0.75, 0.25, 0], [0, 0, 1]]


def test_nms_stops_at_max_keep():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 1000, (300, 2))
    boxes = np.concatenate([xy, xy + 5], 1).astype(np.float32)
    scores = rng.uniform(0, 1, 300).astype(np.float32)
    full = nms(boxes, scores, 0.45)
    assert len(full) > 40
    np.testing.assert_array_equal(nms(boxes, scores, 0.45, max_keep=40), full[:40])


def test_class_vote_is_the_score_weighted_geometric_mean_of_the_overlapping_candidates():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60], [0, 0, 10, 30]], np.float32)
    scores = np.array([0.9, 0.3, 0.8, 0.7], np.float32)
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.0, 0.0, 1.0]], np.float32)
    got = class_vote(boxes, scores, probs, np.array([0, 2]), 0.5)
    w = np.array([0.9, 0.3]) / 1.2  # box 1 overlaps box 0 by 9/11; box 3 by 1/3 (no vote)
    g = np.exp(w @ np.log(probs[:2].astype(np.float64)))
    assert np.allclose(got[0], g / g.sum(), atol=1e-6)
    assert np.allclose(got[1], probs[2], atol=1e-6)  # alone: its own probabilities
    assert got.dtype == np.float32 and np.allclose(got.sum(1), 1)
    assert got[0].argmax() == 0 and got[0, 1] > probs[0, 1]  # the neighbour pulls, the higher score wins
    # a zero probability does not zero the vote (clipped), and a zero score still votes for itself
    lone = class_vote(boxes[:1], np.zeros(1, np.float32), probs[3:], np.array([0]), 0.5)
    assert np.allclose(lone, probs[3:], atol=1e-5)
    assert class_vote(boxes, scores, probs, np.array([], int)).shape == (0, 3)
    # candidates scored under min_score do not vote; a kept box always does
    assert np.allclose(class_vote(boxes, scores, probs, np.array([0]), 0.5, 0.5), probs[:1], atol=1e-6)
    assert np.allclose(class_vote(boxes, scores, probs, np.array([1]), 0.5, 0.5)[0], got[0], atol=1e-6)


def test_class_vote_of_many_boxes_matches_the_whole_matrix():
    boxes, scores, probs, keep = _many_candidates(2)
    w = (iou_matrix(boxes[keep], boxes) > 0.5) * scores[None, :].astype(np.float64)
    w = w / w.sum(1, keepdims=True)
    g = np.exp(w @ np.log(np.clip(probs.astype(np.float64), 1e-6, 1)))
    assert np.allclose(class_vote(boxes, scores, probs, keep, 0.5), g / g.sum(1, keepdims=True), atol=1e-5)


def test_containment_is_the_share_of_each_box_inside_another_and_short_side_its_smaller_side():
    from maskwatch.core.geometry import containment_matrix, short_side

    inner, outer = (
        np.array([[10, 10, 20, 30]], np.float32),
        np.array([[0, 0, 15, 100], [100, 100, 110, 110]], np.float32),
    )
    np.testing.assert_allclose(containment_matrix(inner, outer), [[0.5, 0.0]])
    np.testing.assert_allclose(containment_matrix(outer[:1], inner), [[100 / 1500]])
    np.testing.assert_allclose(short_side(np.vstack([inner, outer])), [10, 15, 10])
