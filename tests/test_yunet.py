"""Issue 15: the YuNet-n port, the fine-tuned export, the input sized to the picture, calibrated
face scores and what a PaddleHub caller's confs_threshold=0.6 keeps."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskwatch import Detector
from maskwatch.core.detections import Detections
from maskwatch.core.calibration import calibrate, fit_calibration, keep_threshold, raw_threshold
from maskwatch.core.geometry import iou_matrix
from maskwatch.core.registry import VOTE_SCORE, read_metadata, resolve_model
from maskwatch.export import write_metadata

from conftest import data_dir


def _teacher() -> Path:
    from maskwatch.train.teacher import teacher_path

    p = teacher_path()
    if not p.is_file():
        pytest.skip(f"YuNet-n teacher not available ({p}): set MASKWATCH_TEACHER or provide ../shared/teachers")
    return p


def _real_pictures(n: int) -> list[Path]:
    d = data_dir()
    if d is None:
        pytest.skip("real photos not available: set MASKWATCH_DATA or provide ../shared/data")
    return sorted((d / "wider-face-val-part" / "images").glob("*/*.jpg"))[:n]


def _blob(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    pad = np.zeros((-(-h // 32) * 32, -(-w // 32) * 32, 3), np.float32)
    pad[:h, :w] = img
    return pad.transpose(2, 0, 1)[None]


def test_port_gives_the_onnx_teachers_outputs():
    torch = pytest.importorskip("torch")
    import onnxruntime as ort

    from maskwatch.train.yunet import YuNet

    path = _teacher()
    net = YuNet.from_onnx(path).eval()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    for pic in _real_pictures(3):
        blob = _blob(cv2.imread(str(pic)))
        ref = dict(zip(names, sess.run(None, {"input": blob})))
        with torch.no_grad():
            out = net(torch.from_numpy(blob))
        assert set(out) == set(names)
        for k in names:
            assert out[k].shape == ref[k].shape, k
            np.testing.assert_allclose(out[k].numpy(), ref[k], atol=1e-4, rtol=1e-4, err_msg=f"{pic.name} {k}")


def test_yunet_mask_keeps_yunets_faces():
    """The mask network's face score and boxes are YuNet's (sqrt(cls * obj); centre + exp(size))."""
    torch = pytest.importorskip("torch")
    from maskwatch.core.geometry import anchor_points, distances_to_boxes
    from maskwatch.train.yunet import YuNetMask

    m = YuNetMask()
    m.load_teacher(_teacher())
    m.eval()
    blob = _blob(cv2.imread(str(_real_pictures(1)[0])))
    with torch.no_grad():
        ref = m.base(torch.from_numpy(blob))
        obj, dist, cls = m(torch.from_numpy(blob))
    score = torch.sigmoid(obj)[0].numpy()
    want = np.concatenate(
        [torch.sqrt(ref[f"cls_{s}"][0, :, 0] * ref[f"obj_{s}"][0, :, 0]).numpy() for s in (8, 16, 32)]
    )
    np.testing.assert_allclose(score, want, atol=1e-5)
    assert cls.shape[-1] == 3
    # boxes: YuNet's decode (prior at the cell corner) equals maskwatch's (distances from the cell centre)
    h, w = blob.shape[2:]
    boxes = distances_to_boxes(anchor_points(h, w), dist[0].numpy())
    s, gw = 8, w // 8
    bb = ref["bbox_8"][0].numpy()
    i = int(np.argmax(want[: len(bb)]))
    cx, cy = (i % gw + bb[i, 0]) * s, (i // gw + bb[i, 1]) * s
    bw, bh = np.exp(bb[i, 2]) * s, np.exp(bb[i, 3]) * s
    np.testing.assert_allclose(boxes[i], [cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], atol=1e-3)


def test_shipped_detector_is_the_same_in_pytorch_and_onnxruntime():
    """The shipped server detector (fine-tuned YuNet-n), loaded back into the PyTorch module, gives
    onnxruntime's outputs and faces."""
    torch = pytest.importorskip("torch")
    import onnxruntime as ort

    from maskwatch.core.detector import decode
    from maskwatch.core.geometry import nms
    from maskwatch.train.export import load_onnx_weights
    from maskwatch.train.net import ExportWrapper
    from maskwatch.train.yunet import YuNetMask

    spec = resolve_model("server")
    assert spec.meta.get("arch") == "YuNetMask"
    net = YuNetMask()
    loaded = load_onnx_weights(net, spec.path)
    used = [k for k in net.state_dict() if ".kps." not in k]  # the landmark branch is not exported
    assert loaded == len(used)
    wrapped = ExportWrapper(net.eval())
    sess = ort.InferenceSession(str(spec.path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    pics = [cv2.imread(str(p)) for p in _real_pictures(2)] if data_dir() else []
    pics.append(rng.integers(0, 255, (256, 320, 3), dtype=np.uint8))
    for img in pics:
        blob = _blob(img)
        ref = sess.run(None, {sess.get_inputs()[0].name: blob})
        with torch.no_grad():
            out = [t.numpy() for t in wrapped(torch.from_numpy(blob))]
        for a, b in zip(out, ref):
            np.testing.assert_allclose(a, b, atol=1e-3, rtol=1e-3)
        faces = []
        for o in (out, ref):
            d = decode(o[0][0], o[1][0], o[2][0], blob.shape[2:], 0.3, spec.strides)
            faces.append(d.boxes[nms(d.boxes, d.scores, 0.45)])
        assert len(faces[0]) == len(faces[1])
        if len(faces[0]):
            assert np.diag(iou_matrix(faces[0], faces[1])).min() > 0.999


def test_distillation_pulls_toward_the_teacher_and_early_layers_stay():
    """The distillation term is zero when the student gives the teacher's outputs and grows as they
    part; with freeze="early" a training step moves stages 3-5 and the heads, never the stem or
    stages 1-2 (made-up pictures, random weights)."""
    torch = pytest.importorskip("torch")
    from maskwatch.train.loop import FROZEN_STAGES, _param_groups
    from maskwatch.train.loss import distill_loss
    from maskwatch.train.yunet import YuNetMask

    torch.manual_seed(0)
    net = YuNetMask()
    x = torch.rand(2, 3, 64, 96) * 255
    with torch.no_grad():
        t_obj, t_dist, _ = net(x)
    t_obj = t_obj + torch.linspace(-6, 6, t_obj.shape[1])  # some cells sure, most not
    assert float(distill_loss(t_obj, t_dist, t_obj, t_dist)) == pytest.approx(0.0, abs=1e-6)
    near = float(distill_loss(t_obj + 0.5, t_dist * 1.1, t_obj, t_dist))
    far = float(distill_loss(t_obj + 3.0, t_dist * 2.0, t_obj, t_dist))
    assert 0 < near < far

    frozen = net.freeze_backbone(FROZEN_STAGES["early"])
    early = [net.base.stem, net.base.stage1, net.base.stage2]
    assert {id(p) for p in frozen} == {id(p) for m in early for p in m.parameters()}
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    opt = torch.optim.AdamW(_param_groups(net, 5e-4, 0.1), lr=1e-2)
    obj, dist, cls = net(x)
    (distill_loss(obj, dist, t_obj, t_dist) + cls.square().mean()).backward()
    opt.step()
    moved = {n for n, p in net.named_parameters() if not torch.equal(p, before[n])}
    assert not any(n.startswith(("base.stem", "base.stage1", "base.stage2")) for n in moved)
    assert any(n.startswith("base.stage3") for n in moved) and any(n.startswith("cls_out") for n in moved)


def test_distillation_floor_lets_labelled_faces_rise_above_the_teacher():
    """With ``labelled`` (the cells a labelled face takes, from ``detection_loss``) the teacher's
    score is a floor there: a student scoring a labelled face above the teacher pays nothing for it,
    below it pays as before, and off the labelled cells the pull is both ways (made-up tensors)."""
    torch = pytest.importorskip("torch")
    from maskwatch.train.loss import detection_loss, distill_loss

    t_obj = torch.full((1, 6), -2.0)  # the teacher unsure everywhere (a hooded, turned face)
    t_dist = torch.full((1, 6, 4), 8.0)
    labelled = torch.tensor([[True, True, False, False, False, False]])
    up = t_obj.clone()
    up[0, 0] = 3.0  # the student sure of a labelled face
    assert float(distill_loss(up, t_dist, t_obj, t_dist, labelled)) == pytest.approx(0.0, abs=1e-6)
    assert float(distill_loss(up, t_dist, t_obj, t_dist)) > 0.1  # the two-way pull would hold it down
    down = t_obj.clone()
    down[0, 1] = -6.0  # below the teacher on a labelled face: still pulled up
    assert float(distill_loss(down, t_dist, t_obj, t_dist, labelled)) > 0
    off = t_obj.clone()
    off[0, 4] = 3.0  # above the teacher where no face is labelled: pulled down
    assert float(distill_loss(off, t_dist, t_obj, t_dist, labelled)) == pytest.approx(
        float(distill_loss(off, t_dist, t_obj, t_dist)), rel=1e-6
    )

    # detection_loss names the cells its faces take: a 32 px face on a 64 px picture takes some, not all
    h = w = 64
    n_cells = sum((h // s) * (w // s) for s in (8, 16, 32))
    obj, dist, cls = torch.zeros(1, n_cells), torch.full((1, n_cells, 4), 10.0), torch.zeros(1, n_cells, 3)
    out: list = []
    detection_loss(obj, dist, cls, [[[16, 16, 48, 48]]], [[0]], [[False]], (h, w), out)
    assert out[0].shape == (1, n_cells) and 0 < int(out[0].sum()) < n_cells


def test_lite_layout_runs_stage_2s_wide_units_at_stride_8(tmp_path):
    """``YuNetMaskLite`` holds YuNet-n's tensors (each layout loads the other's file), gives as many
    cells per level, and runs stage 2's 64-channel units on a quarter of the positions; a training
    file of that layout is exported with its arch and rebuilt from it (fine-tuning)."""
    torch = pytest.importorskip("torch")
    from maskwatch.train.export import export_detector, load_onnx_weights
    from maskwatch.train.finetune import network_of
    from maskwatch.train.loop import DetectorRecipe, build_network, build_teacher
    from maskwatch.train.yunet import YuNetMask

    torch.manual_seed(0)
    full, lite = YuNetMask.of_arch("YuNetMask"), YuNetMask.of_arch("YuNetMaskLite")
    with torch.no_grad():  # no two tensors alike (the exporter would store them once)
        for p in full.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    assert (full.config["arch"], lite.config["arch"]) == ("YuNetMask", "YuNetMaskLite")
    assert {k: v.shape for k, v in full.state_dict().items()} == {k: v.shape for k, v in lite.state_dict().items()}
    seen: dict[str, tuple[int, ...]] = {}

    def keep(name: str):
        def hook(module, inputs, output) -> None:
            seen.setdefault(name, tuple(output.shape))

        return hook

    for name, net in (("full", full), ("lite", lite)):
        net.base.stage2[2].register_forward_hook(keep(name))
    x = torch.rand(1, 3, 128, 160) * 255
    with torch.no_grad():
        outs = [net.eval()(x) for net in (full, lite)]
    assert [o.shape for o in outs[0]] == [o.shape for o in outs[1]]
    assert seen["full"][-2:] == (32, 40) and seen["lite"][-2:] == (16, 20)  # stride 4 against stride 8

    path = export_detector(full, tmp_path / "full.onnx")
    assert load_onnx_weights(lite, path, strict=True) == len([k for k in lite.state_dict() if ".kps." not in k])
    with torch.no_grad():
        same = lite(x)
    assert not torch.allclose(same[0], outs[0][0])  # the same weights, another network
    lite_path = export_detector(lite, tmp_path / "lite.onnx")
    assert read_metadata(lite_path)["arch"] == "YuNetMaskLite"
    rebuilt = network_of(lite_path, read_metadata(lite_path), "stem", lambda s: None)
    assert rebuilt.base.stride8_from == 2
    assert not any(p.requires_grad for p in rebuilt.base.stage1.parameters())
    assert all(p.requires_grad for p in rebuilt.base.stage2.parameters())

    # the distillation teacher of a lite recipe: its starting file in YuNet-n's layout
    recipe = DetectorRecipe(arch="YuNetMaskLite", distill=1.0, distill_from="init", init=str(path))
    teacher = build_teacher(recipe)
    assert teacher is not None and teacher.base.stride8_from == 4
    with torch.no_grad():
        assert torch.allclose(teacher(x)[0], outs[0][0], atol=1e-4)
    assert build_network(recipe).base.stride8_from == 2
    with pytest.raises(ValueError, match="distill_from"):
        build_teacher(DetectorRecipe(arch="YuNetMaskLite", distill=1.0, distill_from="init"))
    with pytest.raises(ValueError, match="unknown detector arch"):
        build_network(DetectorRecipe(arch="YuNetMaskHuge"))


def _model_with(tmp_path: Path, **settings) -> Path:
    """A copy of the shipped mobile model (and its crop classifier beside it) with other runtime settings."""
    path = tmp_path / "m.onnx"
    spec = resolve_model("mobile")
    shutil.copy2(spec.path, path)
    for extra in spec.files[1:]:
        shutil.copy2(extra, tmp_path / extra.name)
    meta = read_metadata(path)
    meta.update(settings)
    for k in [k for k, v in settings.items() if v is None]:
        meta.pop(k)
    write_metadata(path, meta)
    return path


def test_input_sized_to_the_picture(tmp_path):
    det = Detector(_model_with(tmp_path, upscale=1.25, min_input=320, max_input=1280))
    assert det.passes(640, 480) == ([800], [])  # own size x 1.25
    assert det.passes(100, 200) == ([320], [])  # enlarged to the floor
    assert det.passes(1024, 768) == ([1280], [])  # at the cap, not past 1.25 x the cap: no tiles
    whole, regions = det.passes(3000, 2000)  # far above the cap: the whole at the cap, and tiles
    assert whole == [1280] and regions
    tile_px = round(1280 / 1.25)
    covered = np.zeros((2000, 3000), bool)
    for (x0, y0, x1, y1), size in regions:
        assert size == 1280 and x1 - x0 <= tile_px and y1 - y0 <= tile_px
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    # a fixed input size asked for: the old rule (long side = input size, tiles only when asked)
    fixed = Detector(_model_with(tmp_path, upscale=1.25), input_size=640)
    assert fixed.passes(3000, 2000) == ([640], [])
    assert Detector(_model_with(tmp_path, upscale=1.25), input_size=640, tile=True).passes(3000, 2000)[1]
    # a first pass smaller than the picture (mobile's x0.8) shrinks pictures up to 1.25 x the cap, and
    # tiles larger ones at their own resolution, as x1 does: tiles keep small faces, and get no zoom
    smaller = Detector(_model_with(tmp_path, upscale=0.8, min_input=512, max_input=1280))
    assert smaller.passes(640, 480) == ([512], []) and smaller.passes(1500, 1000) == ([1200], [])
    whole, regions = smaller.passes(1700, 1200)
    assert whole == [1280] and regions and all(size == 1280 for _, size in regions)
    assert all(x1 - x0 <= 1280 and y1 - y0 <= 1280 for (x0, y0, x1, y1), _ in regions)
    # a model without the rule keeps its fixed size
    plain = Detector(_model_with(tmp_path, upscale=None, input_size=512))
    assert plain.passes(300, 200) == ([512], [])
    # and pictures of any size run end to end
    for shape in ((31, 45, 3), (480, 640, 3), (1700, 2600, 3)):
        d = det.detections(np.full(shape, 90, np.uint8))
        assert d.boxes.shape[1] == 4


def test_calibration_scales_the_score_and_keeps_the_ranking():
    rng = np.random.default_rng(0)
    scores = np.sort(rng.uniform(0.05, 0.95, 2000))[::-1]
    hits = rng.uniform(size=2000) < scores  # higher scores are more often right
    recall = np.cumsum(hits) / hits.sum()
    default = 0.4
    keep = keep_threshold(scores, recall, default)
    assert keep >= default
    r_default = recall[scores >= default][-1]
    assert recall[scores >= keep][-1] >= r_default - 0.01  # at most 1 point of recall below the default's
    knots = fit_calibration(default, keep)
    raw, cal = knots
    assert np.all(np.diff(raw) > 0) and np.all(np.diff(cal) > 0) and cal[0] == 0.0
    # 0.6 is the raw threshold that keeps the recall; the default maps below it
    assert abs(raw_threshold(0.6, knots) - keep) < 1e-4
    assert float(calibrate(np.array([default]), knots)[0]) <= 0.6
    for t in (0.2, 0.5, 0.6, 0.9):
        assert abs(float(calibrate(np.array([raw_threshold(t, knots)]), knots)[0]) - t) < 1e-4
    # below the knee a pure scale: score x class probability ranks faces as before
    low = scores[calibrate(scores, knots) < 0.95]
    probs = rng.uniform(size=len(low))
    assert (
        np.argsort(-(low * probs), kind="stable") == np.argsort(-(calibrate(low, knots) * probs), kind="stable")
    ).all()
    with pytest.raises(ValueError):
        fit_calibration(0.7, 0.5)


def test_detector_reports_calibrated_scores(tmp_path):
    img = cv2.imread(str(_real_pictures(1)[0])) if data_dir() else None
    if img is None:
        pytest.skip("real photos not available: set MASKWATCH_DATA or provide ../shared/data")
    knots = ([0.0, 0.5, 1.0], [0.0, 0.8, 1.0])
    plain = Detector(_model_with(tmp_path, score_calibration=None), input_size=640)
    (tmp_path / "c").mkdir()
    calibrated = Detector(_model_with(tmp_path / "c", score_calibration=[knots[0], knots[1]]), input_size=640)
    raw = plain.detections(img, score_threshold=0.1)
    got = calibrated.detections(img, score_threshold=float(calibrate(np.array([0.1]), knots)[0]))
    assert len(raw) and len(got) == len(raw)
    np.testing.assert_allclose(got.scores, calibrate(raw.scores, knots), atol=1e-5)
    np.testing.assert_allclose(got.boxes, raw.boxes, atol=1e-3)


def _found(faces_boxes: list[np.ndarray], truth: list[np.ndarray]) -> float:
    hit = total = 0
    for b, g in zip(faces_boxes, truth):
        total += len(g)
        if len(b) and len(g):
            hit += int((iou_matrix(g, b).max(1) >= 0.5).sum())
    return hit / max(total, 1)


@pytest.mark.parametrize("module,count", [("pyramidbox_lite_mobile_mask", 80), ("pyramidbox_lite_server_mask", 30)])
def test_paddlehub_threshold_keeps_the_faces(module, count, data):
    """A PaddleHub caller passing confs_threshold=0.6 loses at most 2 points of recall against the
    model's own default threshold (WIDER FACE validation pictures, every face labelled)."""
    from maskwatch import hub
    from maskwatch.evaluation.datasets import load_dataset

    root = data / "wider-face-val-part"
    samples = load_dataset(root, root / "val.txt")[:count]
    m = hub.Module(name=module)
    det = Detector(hub.MODULES[module])
    paddle = m.face_detection(paths=[str(s.image) for s in samples], confs_threshold=0.6)
    paddle_boxes = [
        np.array([[f["left"], f["top"], f["right"], f["bottom"]] for f in r["data"]]).reshape(-1, 4) for r in paddle
    ]
    default_boxes = [det.detections(str(s.image)).boxes for s in samples]
    truth = [s.boxes[~s.ignore] for s in samples]
    r_default, r_paddle = _found(default_boxes, truth), _found(paddle_boxes, truth)
    assert r_default > 0.3
    assert r_paddle >= r_default - 0.02, (r_paddle, r_default)


def _faces(*rows: tuple[float, float, float, float, float]) -> Detections:
    """Made-up first-pass candidates: (x1, y1, x2, y2, network score) rows, picture pixels."""
    a = np.array(rows, np.float32).reshape(-1, 5)
    return Detections(a[:, :4], a[:, 4], np.full((len(a), 3), 1 / 3, np.float32))


def test_crowd_zoom_rule_on_made_up_first_passes(tmp_path):
    """A second pass, zoom x larger, only when the first finds a likely face under zoom_below px at its input."""
    det = Detector(
        _model_with(
            tmp_path,
            upscale=1.0,
            min_input=640,
            max_input=1280,
            zoom=1.75,
            zoom_below=12,
            zoom_score=0.25,
            zoom_max_input=None,
            zoom_max_scale=None,
        )
    )
    assert det.zoom == 1.75 and det.zoom_max_input == 2560  # default cap: twice max_input
    small, big = (10, 10, 20, 19, 0.9), (100, 100, 180, 190, 0.9)  # short sides 9 and 80 px
    assert det.zoom_sizes(640, 480, _faces(big)) == []  # no small face: one pass
    assert det.zoom_sizes(640, 480, _faces()) == []
    assert det.zoom_sizes(640, 480, _faces(big, small)) == [1120]  # 640 x 1.75
    assert det.zoom_sizes(640, 480, _faces((10, 10, 20, 19, 0.2))) == []  # small but unlikely
    # the size is measured at the first pass's input: a 320 px picture runs at 640 (the floor), so 9 px -> 18 px
    assert det.zoom_sizes(320, 240, _faces(small)) == []
    assert det.zoom_sizes(320, 240, _faces((10, 10, 15, 15, 0.9))) == [1120]  # 5 px -> 10 px
    assert det.zoom_sizes(1280, 960, _faces(small)) == [2240]
    assert det.zoom_sizes(3000, 2000, _faces(small)) == []  # tiles already enlarge a large picture
    capped = Detector(_model_with(tmp_path, upscale=1.0, zoom=1.75, zoom_max_input=1000))
    assert capped.zoom_sizes(640, 480, _faces(small)) == [1000]
    assert capped.zoom_sizes(1200, 900, _faces(small)) == []  # the cap is no larger than the first pass
    assert Detector(_model_with(tmp_path, zoom=1.75), zoom=0).zoom_sizes(640, 480, _faces(small)) == []  # turned off
    # a cap relative to the picture: a 400 px picture (first pass 640) is enlarged to 800, not 1120
    scaled = Detector(_model_with(tmp_path, upscale=1.0, min_input=640, zoom=1.75, zoom_max_scale=2.0))
    assert scaled.zoom_sizes(400, 300, _faces((10, 10, 15, 15, 0.9))) == [800]
    assert scaled.zoom_sizes(640, 480, _faces(small)) == [1120]  # 2 x 640 = 1280: the zoom's own 1120 is less
    assert scaled.zoom_sizes(300, 200, _faces((10, 10, 13, 13, 0.9))) == []  # 2 x 300 = 600: no larger than 640
    assert (
        "at most 1920 px and the picture x2"
        in resolve_model(str(_model_with(tmp_path, zoom=1.75, zoom_max_scale=2))).input_policy()
    )
    assert Detector(_model_with(tmp_path, zoom=None)).zoom == 0  # a file without the setting: off
    assert "x1.75 more" in resolve_model(str(_model_with(tmp_path, zoom=1.75))).input_policy()
    for bad in (0.5, 1.0, -2, 9, float("nan"), True):
        with pytest.raises(ValueError, match="zoom"):
            Detector("mobile", zoom=bad)


def test_shrunk_pass_rule_on_made_up_first_passes(tmp_path):
    """A pass at shrink_input px only when the first pass holds a candidate of shrink_above px or more
    at its input, and only when the first pass is well above the shrunk size."""
    first_pass = {"upscale": 1.0, "min_input": 640, "max_input": 1280}  # the picture's own size, from 640 px
    shrink = {"shrink_input": 320, "shrink_above": 200, "shrink_score": 0.25, "shrink_trigger": None}
    det = Detector(_model_with(tmp_path, **first_pass, **shrink))
    near, far = (100, 100, 400, 420, 0.3), (10, 10, 60, 70, 0.9)  # short sides 300 and 50 px
    assert det.shrink_size(640, 480, _faces(far)) == 0
    assert det.shrink_size(640, 480, _faces()) == 0
    assert det.shrink_size(640, 480, _faces(far, near)) == 320
    assert det.shrink_size(640, 480, _faces((100, 100, 400, 420, 0.2))) == 0  # big but unlikely
    # measured at the first pass's input: a 400 px picture runs at 640, so 130 px -> 208 px
    assert det.shrink_size(400, 300, _faces((0, 0, 130, 150, 0.5))) == 320
    assert det.shrink_size(2000, 1500, _faces((0, 0, 300, 300, 0.5))) == 0  # 300 px -> 192 px at 1280
    assert (
        Detector(_model_with(tmp_path, upscale=1.0, min_input=320, shrink_input=320)).shrink_size(
            400, 300, _faces(near)
        )
        == 0
    )  # a first pass of 400 px: no smaller pass worth running
    assert Detector(_model_with(tmp_path, shrink_input=None)).shrink_size(640, 480, _faces(near)) == 0  # off
    # a candidate must reach shrink_trigger (when above shrink_above) to ask: 208 px does not reach 250
    asks = Detector(
        _model_with(tmp_path, upscale=1.0, min_input=640, shrink_input=224, shrink_above=150, shrink_trigger=250)
    )
    assert asks.shrink_size(400, 300, _faces((0, 0, 130, 150, 0.5))) == 0
    assert asks.shrink_size(400, 300, _faces((0, 0, 160, 180, 0.5))) == 224  # 256 px at the input
    assert "pass at 320 px" in resolve_model(str(_model_with(tmp_path, shrink_input=320))).input_policy()


def test_shrunk_pass_and_first_pass_share_the_band_between_their_lines(tmp_path, monkeypatch):
    """Faces of shrink_above px or more come from the shrunk pass; the first pass keeps its own under
    shrink_keep_below (0: shrink_above), so a face in between that the shrunk pass misses stays."""
    sizes: list[int] = []

    def fake_views(views, size, net_min, offset=(0, 0)):
        sizes.append(size)
        if size == 224:  # the shrunk pass (picture px): finds the 300 px face only
            rows = [(300, 100, 620, 440, 0.9)]
        else:  # the first pass (640 px, the picture's own size): 180 and 320 px faces, a small one, and
            # a 200 px piece of the big face (its chin: 0.6 of it inside, IoU 0.26 with it)
            rows = [
                (10, 10, 190, 200, 0.9),
                (300, 110, 620, 430, 0.8),
                (400, 10, 430, 40, 0.9),
                (320, 320, 600, 520, 0.85),
            ]
        found = _faces(*rows)
        return [found[found.scores >= net_min] for _ in views]

    def boxes(keep_below: float) -> list[tuple[int, ...]]:
        shrink = {"shrink_input": 224, "shrink_above": 150, "shrink_score": 0.1, "shrink_keep_below": keep_below}
        det = Detector(_model_with(tmp_path, upscale=1.0, min_input=640, zoom=0, **shrink), classifier_below=0)
        monkeypatch.setattr(det, "_run_views", fake_views)
        sizes.clear()
        got = det.detections(np.zeros((480, 640, 3), np.uint8))
        assert sizes == [640, 224]
        return sorted(tuple(int(round(v)) for v in b) for b in got.boxes)

    small, big, mid = (400, 10, 430, 40), (300, 100, 620, 440), (10, 10, 190, 200)
    assert boxes(0) == sorted([small, big])  # the line at shrink_above: the 180 px face is the shrunk pass's, missed
    # kept from the first pass; its 320 px box is the shrunk pass's, and the piece of it is dropped
    assert boxes(250) == sorted([small, big, mid])
    assert (
        "first pass's up to 250 px" in resolve_model(str(_model_with(tmp_path, shrink_keep_below=250))).input_policy()
    )


def test_a_close_up_is_found_whole_by_the_shrunk_pass(tmp_path):
    """A sample face enlarged 5 times (about 650 px, bigger than any face in training): without the
    shrunk pass the network gives cut, doubled boxes; with it, one box on the whole face."""
    from maskwatch.samples import paths

    img = cv2.imread(str(next(p for p in paths() if p.name == "maksssksksss125.jpg")))
    face = Detector("mobile", shrink_input=0).detect(img)
    assert len(face) == 1  # one bare face of about 95 x 133 px
    big = cv2.resize(img, None, fx=5, fy=5, interpolation=cv2.INTER_LINEAR)
    truth = np.array([face[0].box], np.float64) * 5

    def best_iou(faces) -> float:
        return float(iou_matrix(truth, np.array([f.box for f in faces])).max()) if faces else 0.0

    plain = Detector(_model_with(tmp_path, shrink_input=0)).detect(big)
    shrunk_det = Detector(_model_with(tmp_path, shrink_input=320, shrink_above=200))
    assert shrunk_det.shrink_size(big.shape[1], big.shape[0], plain) == 320
    shrunk = shrunk_det.detect(big)
    assert len(shrunk) == 1 and best_iou(shrunk) >= 0.8 and shrunk[0].label == "no_mask"
    assert best_iou(shrunk) > best_iou(plain) + 0.1


def test_a_low_threshold_keeps_every_face_the_default_finds(tmp_path):
    """Lowering the threshold only adds faces, with the shrunk pass too: a doubtful big box (below the
    model's own threshold) never swallows the faces inside it."""
    from maskwatch.samples import paths

    det = Detector(_model_with(tmp_path, shrink_input=320, shrink_above=200))
    pictures = [cv2.imread(str(p)) for p in paths()]
    pictures.append(cv2.resize(pictures[0], None, fx=5, fy=5))  # a close-up
    for img in pictures:
        sure = det.detect(img)
        low = det.detect(img, score_threshold=0.01)
        assert len(low) >= len(sure)
        if sure:
            found = iou_matrix(np.array([f.box for f in sure]), np.array([f.box for f in low])).max(axis=1)
            assert found.min() >= 0.5, found  # each still there (boxes merged with more candidates move a little)


def test_crowd_zoom_reports_the_enlarged_pass(tmp_path, monkeypatch):
    """The pictures whose first pass asks for it are run again larger and report that pass's faces
    (single and batched calls alike); the others keep their first pass, filtered at the threshold."""
    det = Detector(_model_with(tmp_path, upscale=1.0, min_input=640, max_input=1280, zoom=1.75), score_threshold=0.4)
    raw_min = det.cutoffs(0.4).net
    calls: list[tuple[int, float]] = []

    def fake_views(views, size, net_min, offset=(0, 0)):
        calls.append((size, net_min))
        out = []
        for view in views:
            if size == 1120:  # the enlarged pass: two faces
                rows = [(5, 5, 14, 14, 0.95), (40, 40, 60, 60, 0.9)]
            elif view[0, 0, 0] > 0:  # a crowd: a small face
                rows = [(5, 5, 14, 14, 0.6)]
            else:
                rows = [(100, 100, 180, 190, 0.9), (300, 300, 330, 330, 0.3)]
            found = _faces(*rows)
            out.append(found[found.scores >= net_min])
        return out

    monkeypatch.setattr(det, "_run_views", fake_views)
    crowd, plain = np.full((480, 640, 3), 50, np.uint8), np.zeros((480, 640, 3), np.uint8)
    got = det.detections(crowd)
    # the first pass keeps what the zoom rule and the class vote look at (down to the lower of their floors)
    assert [c[0] for c in calls] == [640, 1120] and calls[0][1] == min(det.zoom_score, VOTE_SCORE) < raw_min
    assert len(got) == 2
    calls.clear()
    assert len(det.detections(plain)) == 1 and [c[0] for c in calls] == [640]  # 0.3: seen by the rule, not reported
    calls.clear()
    one = Detector(_model_with(tmp_path, upscale=1.0, zoom=1.75), score_threshold=0.4)
    monkeypatch.setattr(one, "_run_views", fake_views)
    batch = one.detections_batch([plain, crowd, plain])
    assert [len(d) for d in batch] == [1, 2, 1] and sorted(c[0] for c in calls) == [640, 1120]
    calls.clear()
    off = Detector(_model_with(tmp_path, upscale=1.0, zoom=1.75), score_threshold=0.4, zoom=0)
    monkeypatch.setattr(off, "_run_views", fake_views)
    assert len(off.detections(crowd)) == 1 and [c[0] for c in calls] == [640]
