"""``maskwatch watch`` and ``maskwatch.Watcher``: people counted once, alerts once, streams that misbehave.

The videos are made by the tests from real Kaggle faces (tests/watch_scene.py) and skipped without
../shared/data; streams are MJPEG served by the test on 127.0.0.1.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest


import watch_scene as ws  # noqa: E402

from maskwatch import Detections, MaskwatchError, Watcher  # noqa: E402
from maskwatch.watch.tracking import FaceTracker  # noqa: E402
from maskwatch.watch.webhook import Webhook  # noqa: E402

CLI = [sys.executable, "-m", "maskwatch.cli"]
SMALL = ["--input-size", "320"]  # as the det fixture


@pytest.fixture(scope="module")
def det():
    """The mobile model at the scene's size (320 px: no upscaling, 3x faster than its default 800)."""
    from maskwatch import Detector

    return Detector("mobile", input_size=320)


@pytest.fixture(scope="module")
def crops(data, det):
    c = ws.face_crops(data, det, {"mask": 3, "no_mask": 2})
    if len(c["mask"]) < 3 or len(c["no_mask"]) < 2:
        pytest.skip("not enough large Kaggle faces the detector labels right")
    return c


@pytest.fixture(scope="module")
def scene(crops, tmp_path_factory):
    """5 people (3 mask, 2 no_mask) crossing a 320x240 scene, up to two at a time: (video path, people)."""
    people = ws.make_people(crops)
    path = ws.write_video(ws.render(people), tmp_path_factory.mktemp("watch") / "scene.mp4")
    return path, people


@pytest.fixture(scope="module")
def one_by_one(crops):
    """4 people (2 mask, 2 no_mask) passing one at a time: frames, people, and a frame between two of them."""
    c = {"mask": crops["mask"][:2], "no_mask": crops["no_mask"][:2]}
    people = ws.make_people(c, frames_on=30, gap=40)
    frames = ws.render(people)
    return frames, people, people[2].enter - 5  # between the 2nd and the 3rd person


def _expected(people) -> dict[str, int]:
    return {lab: sum(p.label == lab for p in people) for lab in ("mask", "no_mask")}


def _lines(path: Path) -> list[dict]:
    return [json.loads(ln) for ln in path.read_text().splitlines()]


# -- counting -----------------------------------------------------------------------------------------


def test_each_person_is_counted_once_with_their_label_and_one_alert(scene, det, tmp_path):
    video, people = scene
    want = _expected(people)
    seen: list[dict] = []
    events = tmp_path / "ev.jsonl"
    sizes: list[int] = []

    def listen(e: dict) -> None:  # runs just before the events file's writer: sees every earlier event on disk
        seen.append(e)
        sizes.append(os.path.getsize(events) if events.exists() else 0)

    w = Watcher(str(video), detector=det, on_event=listen, snapshots=tmp_path / "snaps", events=events)
    results = list(w)
    frames = cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT)
    assert len(results) == frames  # a file: every frame processed
    assert all(r.detections.tracker_id is not None for r in results)
    tracked = {int(t) for r in results for t in r.detections.tracker_id}
    settled = [e for e in seen if e["event"] == "label_settled"]
    assert len(settled) == len(people) == len(tracked)  # one track per person, no fragments
    assert {lab: sum(e["label"] == lab for e in settled) for lab in want} == want
    alerts = [e for e in seen if e["event"] == "alert"]
    assert len(alerts) == want["no_mask"] and len({e["track_id"] for e in alerts}) == len(alerts)
    assert all(e["label"] == "no_mask" for e in alerts)
    # each alert's crop saved, its path in the event
    assert sorted(Path(e["snapshot"]).name for e in alerts) == sorted(p.name for p in (tmp_path / "snaps").iterdir())
    ended = [e for e in seen if e["event"] == "track_ended"]
    assert sorted(e["track_id"] for e in ended) == sorted(tracked)
    assert seen[0]["event"] == "stream_started" and seen[-1]["event"] == "stream_ended"
    # the events file: the same events, each on disk (whole line) before the next one came
    assert _lines(events) == json.loads(json.dumps(seen))
    lines = events.read_bytes().splitlines(keepends=True)
    assert sizes == [sum(len(ln) for ln in lines[:i]) for i in range(len(lines))]
    assert seen[-1]["frames"] == w.frames == len(results)


def test_command_line_summary_counts_people_not_frames(scene, tmp_path):
    video, people = scene
    want = _expected(people)
    out = tmp_path / "annotated.mp4"
    p = subprocess.run(
        CLI + ["watch", str(video), "--json", "--save", str(out), "--no-status", *SMALL],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert (s["people"], s["mask"], s["no_mask"], s["alerts"]) == (
        len(people),
        want["mask"],
        want["no_mask"],
        want["no_mask"],
    )
    assert s["compliance"] == pytest.approx(want["mask"] / len(people), abs=1e-3)
    assert s["frames"] > 10 * len(people)  # many frames, few people
    cap = cv2.VideoCapture(str(out))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == s["frames"]
    from maskwatch.cli.watch import summary_text

    text = summary_text(s)  # what the command prints without --json
    assert text.startswith(f"people {len(people)}  mask {want['mask']}  no_mask {want['no_mask']}  incorrect 0")
    assert f"frames {s['frames']} processed" in text


def test_detect_summary_of_a_video_counts_frames_and_points_to_watch(scene):
    video, _ = scene
    p = subprocess.run(
        CLI + ["detect", str(video), "--vid-stride", "10", "--summary", "-f", "csv"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    rows = p.stdout.splitlines()[1:]
    faces = sum(1 for r in rows if r.split(",")[0])
    assert f"videos: 1, 13 frames, {faces} faces summed over frames" in p.stderr
    assert "`maskwatch watch VIDEO` counts people" in p.stderr


def _face(x: float, probs) -> Detections:
    return Detections(
        np.array([[x, 40, x + 60, 100]], np.float32), np.array([0.9], np.float32), np.array([probs], np.float32)
    )


def test_a_one_frame_flicker_neither_settles_nor_alerts():
    tr = FaceTracker(threshold=0.5, fps=25, min_hits=5)
    mask, no_mask = (0.95, 0.04, 0.01), (0.05, 0.9, 0.05)
    ups = []
    for i in range(30):  # one person with a mask, frame 3 and frame 12 read as no_mask
        ups.append(tr.update(_face(10 + 4 * i, no_mask if i in (3, 12) else mask), i, i / 25)[1])
    assert [t.label for u in ups for t in u.settled] == ["mask"]
    assert not any(u.changed for u in ups)
    (track,) = tr.tracks.values()
    assert track.label == "mask" and track.hits >= 28  # ByteTrack confirms a track on its 2nd frame
    # a real change (the mask taken off for good) changes the label once
    for i in range(30, 110):
        ups.append(tr.update(_face(10 + 4 * i, no_mask), i, i / 25)[1])
    assert [(t.label, before) for u in ups for t, before in u.changed] == [("no_mask", "mask")]
    # too short a track never counts
    tr2 = FaceTracker(threshold=0.5, fps=25, min_hits=5)
    for i in range(3):
        tr2.update(_face(10, no_mask), i, i / 25)
    assert [t.counted for t in tr2.finish()] == [False]


# -- events file --------------------------------------------------------------------------------------


def test_events_are_whole_lines_even_after_kill_9(scene, tmp_path):
    video, _ = scene
    events = tmp_path / "events.jsonl"
    proc = subprocess.Popen(
        CLI + ["watch", str(video), "--events", str(events), "--no-status", *SMALL],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not events.exists() or events.read_text().count("\n") < 4):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    text = events.read_text()
    assert text.endswith("\n")
    rows = _lines(events)
    assert len(rows) >= 4 and rows[-1]["event"] != "stream_ended"  # killed mid-way
    for r in rows:
        assert {"event", "wall_time", "video_time", "frame", "track_id", "box", "label", "confidence"} <= set(r)
    started = [r for r in rows if r["event"] == "track_started"]
    assert started and all(len(r["box"]) == 4 and isinstance(r["track_id"], int) for r in started)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (a disk that is always full)")
def test_an_events_file_that_cannot_be_written_stops_the_watch_saying_so(scene, det):
    video, _ = scene
    with pytest.raises(MaskwatchError, match="--events /dev/full: cannot write"):
        Watcher(str(video), detector=det, events="/dev/full").run()


# -- streams ------------------------------------------------------------------------------------------


def _watch_until_served(w: Watcher, srv: ws.MjpegServer, limit: float = 40) -> dict:
    """Run ``w`` until the server has sent every frame (plus the tracks' end), then stop it."""

    def stopper():
        deadline = time.monotonic() + limit
        while not srv.finished and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(w.lost_after + 0.5)
        w.stop()

    threading.Thread(target=stopper, daemon=True).start()
    return w.run()


def test_a_stream_cut_in_the_middle_is_reconnected_and_counting_goes_on(one_by_one, det):
    frames, people, cut = one_by_one
    seen: list[dict] = []
    with ws.MjpegServer(frames, fps=50, cut_at=cut) as srv:
        w = Watcher(srv.url, detector=det, on_event=seen.append)
        s = _watch_until_served(w, srv)
    kinds = [e["event"] for e in seen]
    assert "stream_lost" in kinds and "stream_reconnected" in kinds
    assert kinds.index("stream_lost") < kinds.index("stream_reconnected")
    assert srv.connections >= 2 and s["reconnects"] >= 1
    assert (s["people"], s["mask"], s["no_mask"], s["alerts"]) == (4, 2, 2, 2)
    after = [e for e in seen[kinds.index("stream_reconnected") :] if e["event"] == "label_settled"]
    assert len(after) == 2  # the people after the cut were counted too


def test_the_reader_drops_old_frames_instead_of_queueing_them(one_by_one):
    from maskwatch.watch.reader import FrameReader

    frames, _, _ = one_by_one
    with ws.MjpegServer(frames, fps=100) as srv:
        r = FrameReader(srv.url, buffer=2).start()
        time.sleep(1.0)  # a consumer that is far behind
        first = r.get(timeout=1)
        assert r.dropped > 0 and r.read > 10
        assert first is not None and first.index >= r.read - 3  # a recent frame, not the first one
        r.stop()


def test_a_stream_that_stalls_is_reopened(one_by_one):
    from maskwatch.watch.reader import FrameReader

    frames, _, _ = one_by_one
    seen: list[str] = []
    with ws.MjpegServer(frames[:60], fps=50, stall_at=20) as srv:
        r = FrameReader(srv.url, read_timeout=1.0, on_status=lambda kind, _: seen.append(kind)).start()
        got = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (srv.finished and len(got) >= 60):
            f = r.get(timeout=0.5)
            if f is not None:
                got.append(f.index)
        r.stop()
    assert seen[:2] == ["stream_lost", "stream_reconnected"] and srv.connections == 2
    # frames before and after the stall, numbered on (a frame may be dropped if this loop falls behind)
    assert got == sorted(set(got)) and got[0] < 20 and got[-1] == 59 and len(got) > 40


def test_a_source_that_cannot_be_opened_is_a_clear_error_soon(tmp_path, det):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there
    t = time.monotonic()
    with pytest.raises(MaskwatchError, match="cannot open") as exc:
        list(Watcher(f"http://user:pw@127.0.0.1:{port}/cam.mjpg", detector=det))
    assert str(exc.value).startswith(f"http://127.0.0.1:{port}/cam.mjpg: ")  # the password never shows
    assert time.monotonic() - t < 10
    with pytest.raises(MaskwatchError, match="no such video file"):
        Watcher(str(tmp_path / "missing.mp4"), detector=det).run()
    p = subprocess.run(CLI + ["watch", str(tmp_path / "missing.mp4")], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and p.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'missing.mp4'}: no such video file"
    ]


def test_a_stalled_server_is_an_error_within_10_s(det):
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)  # accepts, never answers
    try:
        t = time.monotonic()
        with pytest.raises(MaskwatchError):
            Watcher(f"http://127.0.0.1:{srv.getsockname()[1]}/cam.mjpg", detector=det, open_timeout=1.5).run()
        assert time.monotonic() - t < 10
    finally:
        srv.close()


def test_sigterm_stops_cleanly_with_the_summary(one_by_one, tmp_path):
    frames, _, _ = one_by_one
    events = tmp_path / "ev.jsonl"
    with ws.MjpegServer(frames, fps=50, loop=True) as srv:
        proc = subprocess.Popen(
            CLI + ["watch", srv.url, "--events", str(events), "--no-status", *SMALL],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (events.exists() and "label_settled" in events.read_text()):
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out.startswith("people ") and "frames " in out
    rows = _lines(events)
    assert rows[-1]["event"] == "stream_ended" and rows[-1]["detail"] == "stopped"
    started = {r["track_id"] for r in rows if r["event"] == "track_started"}
    assert started == {r["track_id"] for r in rows if r["event"] == "track_ended"}  # open tracks were ended


def _popen_ctrl_c_stops(args, **kw):
    """A child that SIGINT stops. A test run started as a background job (`pytest &` in a script)
    has SIGINT ignored, a child inherits that and its Python never raises KeyboardInterrupt (the
    stream test then waited forever); a handler set here becomes the default again in the child."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(args, **kw)
    finally:
        signal.signal(signal.SIGINT, old)


def test_detect_on_a_stream_writes_rows_before_it_ends(one_by_one, tmp_path):
    frames, _, _ = one_by_one
    out = tmp_path / "rows.csv"
    with ws.MjpegServer(frames, fps=25, loop=True) as srv:
        proc = _popen_ctrl_c_stops(
            CLI + ["detect", srv.url, "-f", "csv", "-o", str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 20):
            time.sleep(0.05)
        assert proc.poll() is None  # the stream goes on, the rows are already there
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130 and "stopped (Ctrl-C)" in err
    text = out.read_text()
    assert text.startswith("label,x1,y1,x2,y2,confidence,image") and text.endswith("\n")
    rows = text.splitlines()[1:]
    assert len(rows) >= 19 and all(r.count(",") == 9 for r in rows)


# -- webhook ------------------------------------------------------------------------------------------


class _Receiver:
    def __init__(self, hang: float = 0.0):
        self.bodies: list[dict] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hang:
                    time.sleep(hang)
                owner.bodies.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_webhook_gets_each_alert_once(scene, det):
    video, people = scene
    rx = _Receiver()
    try:
        s = Watcher(str(video), detector=det, webhook=rx.url).run()
    finally:
        rx.close()
    n = _expected(people)["no_mask"]
    assert s["webhook"] == {"sent": n, "failed": 0, "dropped": 0}
    assert len(rx.bodies) == n and {b["event"] for b in rx.bodies} == {"alert"}
    assert len({b["track_id"] for b in rx.bodies}) == n and all(b["label"] == "no_mask" for b in rx.bodies)


def test_a_hanging_webhook_does_not_stall_the_video(scene, det):
    video, people = scene
    t = time.monotonic()
    base = Watcher(str(video), detector=det).run()
    plain = time.monotonic() - t
    rx = _Receiver(hang=30)
    try:
        t = time.monotonic()
        s = Watcher(str(video), detector=det, webhook=Webhook(rx.url, timeout=1, retries=1)).run()
        took = time.monotonic() - t
    finally:
        rx.httpd.server_close()
    assert s["people"] == base["people"] == len(people) and s["frames"] == base["frames"]
    assert s["webhook"]["sent"] == 0 and s["webhook"]["failed"] >= 1
    assert took < plain + 4  # at most the webhook's closing wait, never the receiver's 30 s


# -- the service ----------------------------------------------------------------------------------------


def test_serve_watches_streams_counts_previews_and_keeps_trying_a_dead_one(one_by_one, tmp_path):
    """A video file as the watched source (every frame processed: exact counts whatever the machine's
    load; live streams in the service: test_serve_watch_from_the_command_line) and a dead camera."""
    pytest.importorskip("fastapi")
    import socket

    from fastapi.testclient import TestClient

    from maskwatch.serve import create_app

    frames, people, _ = one_by_one
    video = str(ws.write_video(frames, tmp_path / "door.mp4"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://user:secret@127.0.0.1:{s.getsockname()[1]}/cam.mjpg"  # nothing listens there
    app = create_app("mobile", watch=[f"door={video}", f"yard={dead}"])
    with TestClient(app) as client:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            doc = client.get("/v1/streams").json()
            door = doc["streams"][0]
            if door["state"] == "ended":
                break
            time.sleep(0.3)
        preview = client.get("/v1/streams/door/preview?frames=1")
        one = client.get("/v1/streams/yard?minutes=0").json()
        missing = client.get("/v1/streams/nope")
        page = client.get("/").text
        script = client.get("/static/streams.js")
    assert [s["name"] for s in doc["streams"]] == ["door", "yard"]
    assert door["state"] == "ended" and door["source"] == video and door["frames"] == len(frames)
    c = door["counts"]
    assert (c["people"], c["mask"], c["no_mask"], c["alerts"]) == (4, 2, 2, 2)
    assert c["compliance"] == 0.5
    assert sum(m["people"] for m in door["per_minute"]) == 4 and door["per_minute"][-1]["compliance"] is not None
    assert preview.headers["content-type"].startswith("multipart/x-mixed-replace")
    assert b"Content-Type: image/jpeg" in preview.content and b"\xff\xd8" in preview.content
    assert one["state"] in ("starting", "opening", "retrying") and one["per_minute"] == []
    assert "secret" not in json.dumps(one) and one["source"].startswith("http://127.0.0.1:")
    assert missing.status_code == 404 and "no stream named 'nope'" in missing.text
    assert "/static/streams.js" in page and 'id="streams"' in page and script.status_code == 200


def test_serve_watch_settings_are_checked():
    pytest.importorskip("fastapi")
    from typer.testing import CliRunner

    from maskwatch.cli import app
    from maskwatch.serve import SettingsError, load_settings

    with pytest.raises(SettingsError, match="NAME=SOURCE"):
        load_settings(watch=["rtsp://cam/1"])
    with pytest.raises(SettingsError, match="two streams"):
        load_settings(watch=["a=1", "a=2"])
    assert load_settings(watch=["door=rtsp://cam/1?x=1"]).watch == ["door=rtsp://cam/1?x=1"]
    r = CliRunner().invoke(app, ["serve", "--watch", "door=0", "--workers", "2"])
    assert r.exit_code == 2 and "--watch: streams are watched in one process" in r.output


def test_serve_watch_from_the_command_line(one_by_one):
    pytest.importorskip("fastapi")
    import urllib.request

    from conftest import LiveServer

    frames, _, _ = one_by_one
    with ws.MjpegServer(frames, fps=25, loop=True) as cam:
        srv = LiveServer("--watch", f"door={cam.url}").wait()
        try:
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                with urllib.request.urlopen(srv.url + "/v1/streams?minutes=0", timeout=5) as r:
                    (door,) = json.loads(r.read())["streams"]
                if door["frames"] > 10:
                    break
                time.sleep(0.3)
        finally:
            srv.stop()
    assert door["name"] == "door" and door["state"] == "running" and door["frames"] > 10
    # SIGTERM: uvicorn shuts the app down (the lifespan stops the watcher), then exits by the signal
    assert srv.proc.returncode in (0, -signal.SIGTERM)
    assert "Traceback" not in srv.proc.stderr.read().decode(errors="replace")


# -- stride: the detector on every N-th frame, the tracker between ---------------------------------------


@pytest.mark.parametrize("stride", [2, 3])
def test_stride_counts_each_person_once_as_every_frame_does(scene, det, stride):
    video, people = scene
    frames = int(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT))
    full = Watcher(str(video), detector=det).run()
    w = Watcher(str(video), detector=det, stride=stride)
    results = list(w)
    s = w.summary()
    for lab in ("people", "mask", "no_mask", "alerts"):
        assert s[lab] == full[lab], (lab, s, full)
    assert s["people"] == len(people)
    # nothing saved: the frames between are not decoded, only grabbed
    assert [r.frame for r in results] == list(range(0, frames, stride))
    assert s["frames_detected"] == len(results) and s["frames_skipped"] == frames - len(results)
    assert s["stride"] == stride


def test_stride_with_a_saved_video_draws_every_frame_with_carried_boxes(scene, det, tmp_path):
    video, people = scene
    frames = int(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT))
    w = Watcher(str(video), detector=det, stride=3, save=tmp_path / "out.mp4")
    results = list(w)
    assert len(results) == frames  # every frame handed out and written
    assert w.frames_detected == len(range(0, frames, 3))
    carried = [r for r in results if r.frame % 3 and len(r.detections)]
    assert carried, "no face carried between the detector's frames"
    assert all(r.detections.tracker_id is not None and (r.detections.tracker_id >= 0).all() for r in carried)
    assert int(cv2.VideoCapture(str(tmp_path / "out.mp4")).get(cv2.CAP_PROP_FRAME_COUNT)) == frames


def test_stride_must_be_a_whole_number(det):
    for bad in (0, -1, 1.5, True):
        with pytest.raises(MaskwatchError, match="stride"):
            Watcher("x.mp4", detector=det, stride=bad)
