"""Downloads against a local HTTP server on 127.0.0.1: resume, corruption, checksum mismatch, archives
that try to escape or carry device nodes."""
from __future__ import annotations

import hashlib
import http.server
import threading
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from support.helpers import pathboard

from pathboard.core.engine import plugins
from pathboard.core.errors import PathboardError
from pathboard.core.media.download import Download, download_dataset, fetch


class Server:
    """Serves one payload at /file with HTTP Range support and scripted faults (one per request)."""

    def __init__(self, payload: bytes):
        self.payload, self.faults, self.requests = payload, [], []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                fault = server.faults.pop(0) if server.faults else None
                rng = self.headers.get("Range")
                server.requests.append(rng)
                body, status = server.payload, 200
                if rng and fault != "ignore-range":
                    start = int(rng.removeprefix("bytes=").rstrip("-"))
                    body, status = body[start:], 206
                if fault == "corrupt":
                    body = bytes([body[0] ^ 0xFF]) + body[1:]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if fault == "cut":  # the connection drops half-way
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.close()
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/file"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def crc_zip(tmp_path, shared_data):
    """A small CRC-VAL-HE-7K.zip in the official format (top folder, one folder per class)."""
    path = tmp_path / "CRC-VAL-HE-7K.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for image in sorted((shared_data / "CRC-VAL-HE-7K").glob("*/*"))[::4]:
            zf.write(image, f"CRC-VAL-HE-7K/{image.parent.name}/{image.name}")
    return path.read_bytes()


@pytest.fixture()
def server(crc_zip):
    s = Server(crc_zip)
    yield s
    s.close()


def crc_with(url: str, checksum: str):
    item = Download(url, "CRC-VAL-HE-7K.zip", checksum)
    return replace(plugins.get("dataset", "crc-val-he-7k"), downloads=(item,))


def test_interrupted_download_resumes_and_unpacks(server, crc_zip, tmp_path):
    dataset = crc_with(server.url, "md5:" + hashlib.md5(crc_zip).hexdigest())
    server.faults = ["cut"]
    with pytest.raises(PathboardError, match="download interrupted after .* run the same command again to resume"):
        download_dataset(dataset, tmp_path / "root")
    part = tmp_path / "root" / ".downloads" / "CRC-VAL-HE-7K.zip.part"
    assert 0 < part.stat().st_size < len(crc_zip)
    download_dataset(dataset, tmp_path / "root")
    assert server.requests == [None, f"bytes={len(crc_zip) // 2}-"]  # the second request resumed
    manifest = dataset.manifest(tmp_path / "root")
    assert len(manifest) == 8 and not part.exists()
    # a second call finds the verified archive and downloads nothing
    download_dataset(dataset, tmp_path / "root")
    assert len(server.requests) == 2


def test_corrupted_transfer_is_detected_and_removed(server, crc_zip, tmp_path):
    dataset = crc_with(server.url, "sha256:" + hashlib.sha256(crc_zip).hexdigest())
    server.faults = ["corrupt"]
    with pytest.raises(PathboardError, match="sha256 mismatch .* the corrupt file was removed"):
        download_dataset(dataset, tmp_path)
    assert not (tmp_path / ".downloads" / "CRC-VAL-HE-7K.zip.part").exists()
    assert not (tmp_path / "CRC-VAL-HE-7K").exists()  # nothing unverified was unpacked
    download_dataset(dataset, tmp_path)
    assert len(dataset.manifest(tmp_path)) == 8


def test_wrong_pinned_checksum_never_unpacks(server, tmp_path):
    dataset = crc_with(server.url, "md5:" + "0" * 32)
    with pytest.raises(PathboardError, match="md5 mismatch"):
        download_dataset(dataset, tmp_path)
    assert not (tmp_path / "CRC-VAL-HE-7K").exists()


def test_server_ignoring_range_restarts_cleanly(server, crc_zip, tmp_path):
    item = Download(server.url, "x.zip", "md5:" + hashlib.md5(crc_zip).hexdigest())
    server.faults = ["cut", "ignore-range"]
    with pytest.raises(PathboardError):
        fetch(item, tmp_path)
    assert fetch(item, tmp_path).read_bytes() == crc_zip


def test_archive_members_cannot_escape(tmp_path, server):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("../escaped.txt", "x")
    server.payload = bad.read_bytes()
    dataset = replace(crc_with(server.url, "md5:" + hashlib.md5(server.payload).hexdigest()),
                      downloads=(Download(server.url, "bad.zip", "md5:" + hashlib.md5(server.payload).hexdigest()),))
    with pytest.raises(PathboardError, match="refusing member"):
        download_dataset(dataset, tmp_path / "root")
    assert not (tmp_path / "escaped.txt").exists()


@pytest.mark.subprocess
def test_cli_download_errors_are_one_line(tmp_path):
    out = pathboard("data", "download", "crc-val-he7k", "--data-root", tmp_path)
    assert out.returncode == 2 and "did you mean crc-val-he-7k" in out.stderr and "Traceback" not in out.stderr


def test_an_unreachable_server_is_named_and_nothing_is_said_of_resuming(tmp_path):
    import socket

    with socket.socket() as sock:  # a port nobody listens on: connection refused, as without a network
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    item = Download(f"http://127.0.0.1:{port}/set.zip", "set.zip", "sha256:" + "0" * 64)
    with pytest.raises(PathboardError, match=rf"^set.zip: cannot reach 127.0.0.1:{port} \(.*\); check the network or "
                                             rf"fetch http://127.0.0.1:{port}/set.zip by hand into ") as caught:
        fetch(item, tmp_path / "data")
    assert "resume" not in str(caught.value)


def _tar_with(folder: Path, member, data: bytes = b"") -> Path:
    import io
    import tarfile

    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / "set.tar"
    with tarfile.open(archive, "w") as tf:
        tf.addfile(member, io.BytesIO(data) if data else None)
    return archive


def test_archives_drop_setuid_bits_and_refuse_device_nodes(tmp_path):
    import stat
    import tarfile

    from pathboard.core.errors import PathboardError
    from pathboard.core.media.download import extract

    script = tarfile.TarInfo("set/run.sh")
    script.size, script.mode = 3, 0o4777  # setuid, world-writable
    extract(_tar_with(tmp_path / "a", script, b"#!\n"), tmp_path / "out")
    mode = (tmp_path / "out" / "set" / "run.sh").stat().st_mode
    assert not mode & stat.S_ISUID and not mode & stat.S_IWOTH
    node = tarfile.TarInfo("set/disk")
    node.type = tarfile.CHRTYPE
    with pytest.raises(PathboardError, match="device node"):
        extract(_tar_with(tmp_path / "b", node), tmp_path / "dev")
    assert not (tmp_path / "dev" / "set" / "disk").exists()
