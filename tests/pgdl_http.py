"""Test helpers: a local HTTP server for zips (Range requests, cut connections, errors) and PGDL-layout zips.

The server listens on 127.0.0.1 only; nothing here reaches the network.
"""

from __future__ import annotations

import re
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        if server.fail_status:
            self.send_error(server.fail_status)
            return
        data = server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        ranged = None if server.ignore_range else self.headers.get("Range")
        if ranged:
            start = int(re.fullmatch(r"bytes=(\d+)-", ranged).group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.cut_after is not None:  # announce everything, send part of it, hang up
            self.wfile.write(body[: server.cut_after])
            self.wfile.flush()
            server.cut_after = None
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class ZipServer:
    """``with ZipServer({"/public_data.zip": bytes}) as s:`` serves the files at ``s.url``.

    ``cut_after = N``: the next response announces the full length but closes after N bytes.
    ``ignore_range = True``: answer every request with the whole file (200), as servers without Range do.
    ``fail_status = 500``: every request gets that error. ``requests``: (path, Range header) seen.
    """

    def __init__(self, files: dict[str, bytes]):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.files = dict(files)
        self.httpd.requests = []
        self.httpd.cut_after = None
        self.httpd.fail_status = None
        self.httpd.ignore_range = False
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __getattr__(self, name):
        return getattr(self.httpd, name)

    def __setattr__(self, name, value):
        if name in ("cut_after", "fail_status", "files", "ignore_range"):
            setattr(self.httpd, name, value)
        else:
            super().__setattr__(name, value)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def pgdl_zip(task: Path, path: Path, stem: str = "public_data", compression=zipfile.ZIP_DEFLATED) -> Path:
    """A zip in the public zips' layout: ``<stem>/input_data/<task>/...`` (models, data) beside
    ``<stem>/reference_data/<task>/model_configs.json``."""
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for file in sorted(task.rglob("*")):
            if not file.is_file() or file.name in ("SOURCE.md", "LICENSE"):
                continue
            rel = file.relative_to(task).as_posix()
            tree = "reference_data" if rel == "model_configs.json" else "input_data"
            zf.write(file, f"{stem}/{tree}/{task.name}/{rel}")
    return path


def flip_byte_in_member(path: Path, member: str) -> None:
    """Corrupt a stored (uncompressed) member's data in place: its CRC-32 no longer matches."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    data = bytearray(path.read_bytes())
    offset = info.header_offset
    name_len = int.from_bytes(data[offset + 26 : offset + 28], "little")
    extra_len = int.from_bytes(data[offset + 28 : offset + 30], "little")
    at = offset + 30 + name_len + extra_len + info.compress_size // 2
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
