"""``maskwatch detect --ray`` and ``maskwatch.ray.detect`` on a real two-node Ray cluster on this machine:
actors on both nodes, the same rows as the local command (error rows included), a worker killed mid-way,
Parquet and CSV outputs, an unreachable cluster."""

import csv
import os
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import free_port
from maskwatch import samples
from maskwatch.cli import app
from maskwatch.core.errors import MaskwatchError

ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'maskwatch[ray]'")
pytest.importorskip("ray.data", reason="the ray extra is not installed: pip install 'maskwatch[ray]'")
pa = pytest.importorskip("pyarrow", reason="the ray extra is not installed: pip install 'maskwatch[ray]'")
pq = pytest.importorskip("pyarrow.parquet", reason="the ray extra is not installed: pip install 'maskwatch[ray]'")
pd = pytest.importorskip("pandas", reason="the ray extra is not installed: pip install 'maskwatch[ray]'")

import maskwatch.ray as mray  # noqa: E402

WORKER = "MapWorker(MapBatches(_DetectActor))"
MB = 2**20


@pytest.fixture(scope="module")
def cluster():
    """Two Ray nodes on this machine (one CPU each, small object stores), shared by every test here."""
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": 100 * MB})
    c.add_node(num_cpus=1, object_store_memory=100 * MB)
    c.wait_for_nodes()
    ray.init(address=c.address, logging_level="WARNING")
    yield c
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """The bundled samples twice over, a picture with no face, a corrupt file and a text file."""
    d = tmp_path_factory.mktemp("pics")
    for i, p in enumerate(samples.paths() * 2):
        shutil.copy(p, d / f"{i:02d}_{p.name}")
    cv2.imwrite(str(d / "blank.png"), np.tile(np.linspace(40, 200, 160, dtype=np.uint8)[None, :, None], (120, 1, 3)))
    (d / "corrupt.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return d


@pytest.fixture(scope="module")
def local_csv(pictures, tmp_path_factory):
    """What the plain command writes for the same pictures."""
    out = tmp_path_factory.mktemp("local") / "local.csv"
    r = CliRunner().invoke(app, ["detect", str(pictures), "--output", str(out), "--no-progress"])
    assert r.exit_code == 1, r.output  # the corrupt picture
    return out


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def assert_same_rows(got, expected):
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert (g["image"], g["label"] or "", g["error"] or "") == (e["image"], e["label"] or "", e["error"] or "")
        for k in ("x1", "y1", "x2", "y2", "confidence"):
            if e[k] not in ("", None):
                assert abs(float(g[k]) - float(e[k])) <= 1e-3, (k, g, e)
            else:
                assert g[k] in ("", None) or g[k] != g[k]  # empty, None or NaN


def actors_by_node():
    from ray._private import state

    out = {}
    for a in state.actors().values():
        if a.get("ActorClassName") == WORKER:
            out.setdefault(a["Address"]["NodeID"], []).append(a)
    return out


def test_cli_rows_equal_local_run_on_two_nodes(cluster, pictures, local_csv, tmp_path):
    out = tmp_path / "ray.csv"
    r = CliRunner().invoke(
        app,
        [
            "detect",
            str(pictures),
            "--ray",
            "--workers",
            "2",
            "--batch-size",
            "2",
            "--output",
            str(out),
            "--summary",
            "--save-dir",
            str(tmp_path / "ann"),
        ],
    )
    assert r.exit_code == 1, r.output  # the corrupt picture, as locally
    rows, expected = read_rows(out), read_rows(local_csv)
    assert_same_rows(rows, expected)
    assert out.read_text() == local_csv.read_text()  # byte for byte, in the same order
    bad = [row for row in rows if row["image"].endswith("corrupt.jpg")]
    assert len(bad) == 1 and bad[0]["error"] and not bad[0]["label"]
    assert f"{pictures / 'corrupt.jpg'}: " in r.output  # the error line, as locally
    faces = sum(1 for row in rows if row["label"])
    assert f"all ({len(list(pictures.iterdir()))} inputs)" in r.output and f" {faces} " in r.output
    assert len(list((tmp_path / "ann").iterdir())) == len(list(pictures.iterdir())) - 1  # all but the corrupt one
    # the pool was spread over both nodes
    nodes = actors_by_node()
    assert len(nodes) == 2, nodes


def test_killed_worker_loses_no_picture_and_repeats_none(cluster, pictures, local_csv):
    ds = mray.detect(str(pictures), workers=2, batch_size=1)
    images, killed = [], None
    for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
        t = batch.to_pylist()
        images += [(row["image"], row["label"], row["x1"]) for row in t]
        if killed is None:  # after the first results: kill one worker in the middle of its work
            alive = [a for acts in actors_by_node().values() for a in acts if a["State"] == "ALIVE" and a.get("Pid")]
            assert alive
            killed = alive[0]["ActorID"]
            os.kill(alive[0]["Pid"], signal.SIGKILL)
    assert killed is not None
    from ray._private import state

    assert state.actors()[killed]["NumRestarts"] >= 1  # Ray restarted it and retried its work
    expected = read_rows(local_csv)
    got = sorted((i, lab or "", x) for i, lab, x in images)
    want = sorted((e["image"], e["label"], float(e["x1"]) if e["x1"] else None) for e in expected)
    assert [g[:2] for g in got] == [w[:2] for w in want]  # every picture once, no row lost or repeated
    assert all(g[2] == w[2] or (g[2] is None and w[2] is None) for g, w in zip(got, want))


def test_parquet_and_csv_readable_by_pandas_and_pyarrow(cluster, pictures, local_csv, tmp_path):
    res = mray.run(str(pictures), tmp_path / "rows.parquet", workers=2, batch_size=4)
    assert res.format == "parquet"
    expected = pd.read_csv(local_csv)
    table = pq.read_table(tmp_path / "rows.parquet")
    assert table.schema.names == list(expected.columns)
    df = pd.read_parquet(tmp_path / "rows.parquet").sort_values(["image", "x1"], na_position="first")
    exp = expected.sort_values(["image", "x1"], na_position="first")
    assert len(df) == len(exp)
    assert df["image"].tolist() == exp["image"].tolist()
    assert df["label"].fillna("").tolist() == exp["label"].fillna("").tolist()
    assert np.allclose(
        df[["x1", "y1", "x2", "y2"]].to_numpy(float),
        exp[["x1", "y1", "x2", "y2"]].to_numpy(float),
        atol=1e-3,
        equal_nan=True,
    )
    assert res.summary["errors"] == 1 and res.summary["faces"] == int(exp["label"].notna().sum())
    # Parquet to a URI (object storage's way; here file://), written by the engine as well
    res = mray.run(str(pictures), f"file://{tmp_path}/uri-rows", fmt="parquet", workers=2, batch_size=8)
    assert len(pd.read_parquet(tmp_path / "uri-rows")) == len(exp) and res.summary["errors"] == 1
    with pytest.raises(MaskwatchError, match="new or empty folder"):
        mray.run(str(pictures), tmp_path / "rows.parquet", workers=2)  # never mixed with an earlier run
    # the CSV of a run reads back the same through pyarrow and pandas
    res = mray.run(str(pictures), tmp_path / "rows.csv", workers=2)
    import pyarrow.csv as pacsv

    assert pacsv.read_csv(tmp_path / "rows.csv").num_rows == len(exp)
    assert pd.read_csv(tmp_path / "rows.csv").equals(expected)


def test_python_api_chains_with_a_ray_pipeline(cluster, pictures, local_csv):
    local = read_rows(local_csv)
    # a dataset the user read (one CPU left for the read task beside the one actor)
    read = ray.data.read_binary_files(str(pictures), include_paths=True)
    ds = mray.detect(read, model="mobile", workers=1)
    no_mask = ds.filter(lambda row: row["label"] == "no_mask").count()
    assert no_mask == sum(1 for row in local if row["label"] == "no_mask") > 0
    # a URI that Ray Data reads, the pool on every CPU: the reads still run
    ds = mray.detect(f"file://{pictures}", workers=2, batch_size=4)
    rows = sorted(ds.take_all(), key=lambda r: (r["image"].rsplit("/", 1)[-1], r["x1"] or 0))
    expected = sorted(local, key=lambda r: (r["image"].rsplit("/", 1)[-1], float(r["x1"] or 0)))
    assert [(r["image"].rsplit("/", 1)[-1], r["label"] or "") for r in rows] == [
        (r["image"].rsplit("/", 1)[-1], r["label"]) for r in expected
    ]
    errors = [r for r in rows if r["error"] is not None]
    assert [e["image"].rsplit("/", 1)[-1] for e in errors] == ["corrupt.jpg"]


def test_unreachable_cluster_is_a_clear_error_not_a_hang(pictures):
    port = free_port()  # nothing listens there
    t0 = time.perf_counter()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "maskwatch.cli",
            "detect",
            str(pictures),
            "--ray",
            "--ray-address",
            f"ray://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "RAY_ADDRESS": ""},
    )
    assert r.returncode == 1
    assert f"cannot reach the Ray cluster at ray://127.0.0.1:{port}" in r.stderr
    assert "Traceback" not in r.stderr
    assert time.perf_counter() - t0 < 60


def test_jsonl_equals_the_local_command_line_for_line(cluster, pictures, tmp_path):
    local, remote = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    r = CliRunner().invoke(
        app, ["detect", str(pictures), "-f", "jsonl", "--summary", "-o", str(local), "--no-progress"]
    )
    assert r.exit_code == 1, r.output
    res = mray.run(str(pictures), remote, workers=2, batch_size=3, summary=True)
    assert res.format == "jsonl"
    assert remote.read_text() == local.read_text()  # every picture's line and the summary line


def test_ray_usage_errors_are_one_line_before_any_cluster(pictures, tmp_path):
    for args, msg in (
        (["--ray", "-f", "table"], "--ray writes csv, jsonl or parquet"),
        (["--ray", "--summary-per-image"], "with --ray use --summary"),
        (["--ray-address", "auto"], "--ray-address and --batch-size go with --ray"),
    ):
        r = CliRunner().invoke(app, ["detect", str(pictures), *args])
        assert r.exit_code == 2 and msg in r.output, (args, r.output)


def test_without_ray_installed_the_error_says_what_to_install(pictures):
    code = "import sys; sys.modules['ray'] = None; from maskwatch.cli import main; main()"
    r = subprocess.run(
        [sys.executable, "-c", code, "detect", str(pictures), "--ray"], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 1
    assert "Ray is not installed: pip install 'maskwatch[ray]'" in r.stderr and "Traceback" not in r.stderr


def test_a_clean_run_prints_none_of_rays_own_lines(cluster, tmp_path):
    """Ray's notices (token, progress bars) and its core worker's C++ line about actor arguments are
    held back on a clean run; --verbose shows them. (A separate process joins the test cluster.)"""
    out = tmp_path / "rows.csv"
    cmd = [sys.executable, "-m", "maskwatch.cli", "detect", str(samples.SAMPLES_DIR), "--ray", "--no-progress"]
    cmd += ["--ray-address", cluster.address]
    env = {**os.environ, "RAY_ADDRESS": ""}
    env.pop("MASKWATCH_VERBOSE", None)
    r = subprocess.run([*cmd, "-o", str(out)], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == "", r.stderr
    assert len(read_rows(out)) > len(samples.paths())
    loud = subprocess.run(
        [*cmd, "-o", str(tmp_path / "b.csv"), "--verbose"], capture_output=True, text=True, timeout=300, env=env
    )
    assert loud.returncode == 0 and ("core_worker" in loud.stderr or "WARNING" in loud.stderr), loud.stderr
