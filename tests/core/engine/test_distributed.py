"""``--executor ray`` on a real local Ray cluster started here: ``ray start --head`` plus a second node
joined with ``ray start --address``, both on 127.0.0.1 with one CPU each. The leaderboard it writes must be
the local executor's, cell for cell, and a worker killed mid-task must lose and duplicate nothing."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import duckdb
import pytest
from support.helpers import pathboard
from support.layouts import LUNG_PER_CLASS, fixtures

pytestmark = pytest.mark.ray

RAY = Path(sys.executable).parent / "ray"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tiny_hub, tmp_path_factory):
    """Two Ray nodes on 127.0.0.1 (1 CPU each), token-authenticated as `ray start` is by default; yields the
    address and the environment a driver needs to join it. One cluster at a time on this machine (`ray stop`
    stops every Ray process of it): a pytest-xdist worker that needs one waits for the other's to stop."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    lock = FileLock(str((base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "ray-cluster.lock"))
    with lock:
        yield from _cluster()


def _cluster():
    port = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": uuid.uuid4().hex,
           "RAY_USAGE_STATS_ENABLED": "0"}
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    try:
        subprocess.run([str(RAY), "start", "--head", f"--port={port}", "--include-dashboard=false", *common],
                       env=env, check=True, capture_output=True, timeout=180)
        subprocess.run([str(RAY), "start", f"--address=127.0.0.1:{port}", *common], env=env, check=True,
                       capture_output=True, timeout=180)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the second node registers a moment after `ray start` returns
            status = subprocess.run([str(RAY), "status", "--address", f"127.0.0.1:{port}"], env=env,
                                    capture_output=True, text=True, timeout=60).stdout
            if "2.0 CPU" in status:
                break
            time.sleep(1)
        else:
            pytest.fail(f"the second Ray node never joined:\n{status}")
        yield f"127.0.0.1:{port}", env
    finally:
        subprocess.run([str(RAY), "stop", "--force"], env=env, capture_output=True, timeout=120)


def _run(args, data, db, cache, env, *extra):
    return pathboard(*args, "--data-root", data, "--db", db, *extra,
                     env={**env, "PATHBOARD_CACHE": str(cache), "PATHBOARD_SHARD_ROWS": "64"})


def leaderboard(db) -> dict:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT model, dataset, task, variant, prompt_mode, metric, value, ci_low, ci_high "
                           "FROM leaderboard").fetchall()
    return {tuple(r[:6]): tuple(None if v != v else v for v in r[6:]) for r in rows}  # NaN (no CI) equals NaN


def duplicated(db) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        (n,), = con.execute("SELECT count(*) - count(DISTINCT (run_id, model, dataset, task, variant, prompt_mode)) "
                            "FROM cells").fetchall()
    return n


@pytest.fixture(scope="module")
def data(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("ray-data")
    lung = fixtures(root, shared_data)
    return root, lung


def _processes(title: str) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines()[1:] if line.split(None, 1)[1].startswith(title)]


def test_ray_executor_writes_the_local_leaderboard(cluster, data, tmp_path, shared_data):
    address, env = cluster
    root, lung = data
    folder = f"folder:{lung}"
    # image shards (the lung folder's 96 rows: 2 of 64 per model), slides (camelyon16's two), few-shot on the
    # folder's split; one thread each side, as a 1-CPU Ray task has
    args = ["run", "--models", "quiltnet-b32,plip", "--datasets", f"camelyon16,{folder}",
            "--tasks", "zeroshot,zeroshot-wsi,fewshot", "--prompt-modes", "single",
            "--fewshot-methods", "prototype", "--mpp", "1.0", "--workers", "0", "--threads", "1"]
    local = _run(args, root, tmp_path / "local.duckdb", tmp_path / "local-cache", env)
    assert local.returncode == 0, local.stderr[-3000:]
    ray = _run(args, root, tmp_path / "ray.duckdb", tmp_path / "ray-cache", env, "--executor", "ray",
               "--ray-address", address)
    assert ray.returncode == 0, ray.stderr[-3000:]
    assert "embedding + " in ray.stderr and "scoring unit(s)" in ray.stderr  # the aggregated progress bar
    for stage in ("model load", "image embedding", "tile embedding", "scoring", "storing"):  # workers' stages too
        assert f"time: {stage} " in ray.stderr, ray.stderr[-3000:]

    expected, got = leaderboard(tmp_path / "local.duckdb"), leaderboard(tmp_path / "ray.duckdb")
    assert {k[2] for k in got} == {"zeroshot", "zeroshot-wsi", "fewshot"}
    assert got.keys() == expected.keys()
    assert got == expected  # bit for bit: the same batches, threads and code on the same inputs
    assert duplicated(tmp_path / "ray.duckdb") == 0
    with duckdb.connect(str(tmp_path / "ray.duckdb"), read_only=True) as con:
        costs = con.execute("SELECT model, dataset, images, tiles, images_per_s FROM costs").fetchall()
        (forwards,), = con.execute("SELECT image_forwards FROM runs").fetchall()
    assert forwards > 0
    assert {(m, d) for m, d, *_ in costs if d == folder} == {("quiltnet-b32", folder), ("plip", folder)}
    assert all(images == 3 * LUNG_PER_CLASS and rate > 0 for _, d, images, _, rate in costs if d == folder)
    assert sum(tiles for *_, tiles, _ in costs) > 0

    again = _run(args, root, tmp_path / "again.duckdb", tmp_path / "ray-cache", env, "--executor", "ray",
                 "--ray-address", address)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 images and 0 tiles embedded" in again.stderr  # every shard and slide was cached: no unit ran
    assert "ray: 0 embedding + " in again.stderr
    assert leaderboard(tmp_path / "again.duckdb") == expected


@pytest.mark.subprocess
def test_a_worker_killed_mid_task_loses_and_duplicates_nothing(cluster, tmp_path, shared_data, tiny_hub):
    address, env = cluster
    args = ["run", "--models", "quiltnet-b32", "--datasets", "lc25000-lung", "--tasks", "zeroshot",
            "--prompt-modes", "single", "--workers", "0", "--threads", "1"]
    env = {**env, "PATHBOARD_SHARD_ROWS": "50"}  # 12 shards, each a second or so of decoding and forwards
    reference = pathboard(*args, "--data-root", shared_data, "--db", tmp_path / "local.duckdb",
                          env={**env, "PATHBOARD_CACHE": str(tmp_path / "local-cache")})
    assert reference.returncode == 0, reference.stderr[-3000:]

    db = tmp_path / "ray.duckdb"
    proc = subprocess.Popen([str(Path(sys.executable).parent / "pathboard"), *args, "--data-root", str(shared_data),
                             "--db", str(db), "--executor", "ray", "--ray-address", address],
                            env={**env, "PATHBOARD_CACHE": str(tmp_path / "ray-cache")}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    killed, seen = [], {}
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline and len(killed) < 2:
        for pid in _processes("ray::pathboard-embed"):  # a worker busy embedding a shard
            seen.setdefault(pid, time.monotonic())
            if time.monotonic() - seen[pid] > 0.3 and pid not in killed:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        time.sleep(0.05)
    out, err = proc.communicate(timeout=300)
    assert killed, f"no embedding worker was seen to kill:\n{err[-2000:]}"
    assert proc.returncode == 0, err[-3000:]
    assert leaderboard(db) == leaderboard(tmp_path / "local.duckdb")
    assert duplicated(db) == 0
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM cells WHERE variant = ''").fetchone()[0] == 1
        assert con.execute("SELECT status FROM runs").fetchone()[0] == "finished"
    print(f"\nkilled {len(killed)} Ray worker(s) mid-shard; the run retried them and finished with the local "
          "leaderboard")


@pytest.mark.subprocess
def test_ray_executor_without_a_cluster_is_one_line(tmp_path, shared_data, tiny_hub):
    port = _free_port()  # nothing listens there
    result = pathboard("run", "--models", "quiltnet-b32", "--datasets", "crc-val-he-7k", "--tasks", "zeroshot",
                       "--data-root", shared_data, "--db", tmp_path / "pb.duckdb", "--executor", "ray",
                       "--ray-address", f"127.0.0.1:{port}")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert f"cannot join the Ray cluster at 127.0.0.1:{port}" in result.stderr
