"""A small HTTP proxy in front of the S3 server. make_catalog.py puts it between barman-cloud
and the store while it builds the catalog; test_failures.py puts it between cnpg-ops and the
store to inject failures. Restores and fixtures talk to the S3 server directly.

It forwards every request byte for byte (the Host header and all signed headers are kept,
so SigV4 signatures stay valid) and can do three things on request:

- hold: pause the PUT of a `base/<id>/backup.info` whose body says `status=STARTED`.
  barman-cloud-backup (>= 3.19) uploads that file right after pg_backup_start and before it
  copies PGDATA, so while the request is held the caller can commit rows that land
  *inside* the backup (after its begin, before its end) -- deterministically.

- fail: for the held backup, once its backup history file (`*.backup`) has been archived --
  which PostgreSQL does inside pg_backup_stop -- answer every CompleteMultipartUpload under
  `base/<id>/` with 403 AccessDenied. The tar parts completed before the stop are kept, the
  last part (the one holding global/pg_control and backup_label) never appears, and
  barman-cloud-backup writes a backup.info with status=FAILED whose end_time/end_wal are
  filled in: a backup that failed AFTER pg_backup_stop.

- rules (test_failures.py): answer every request a rule matches with an S3 error, either
  persistently or only the first `times` matches (a transient failure: the retry then goes
  through). Every request is also logged (method, key, query, status) for the assertions.
"""

from __future__ import annotations

import http.client
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BACKUP_INFO_RE = re.compile(r"/base/(\d{8}T\d{6})/backup\.info$")
BACKUP_HISTORY_RE = re.compile(r"/wals/[0-9A-F]{16}/[0-9A-F]{24}\.[0-9A-F]{8}\.backup(\.[a-z0-9]+)?$")

# Headers that must not be forwarded verbatim (hop-by-hop, or handled by this proxy).
HOP_HEADERS = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "expect", "upgrade", "te"}


@dataclass
class Request:
    """One request as the proxy saw it. `key` is the path without the bucket ('' for bucket
    operations such as ListObjectsV2); `query` maps each parameter to its first value."""

    method: str
    bucket: str
    key: str
    query: dict
    status: int | None = None   # what the client got
    injected: str | None = None  # the rule that refused it

    @property
    def is_list(self) -> bool:
        return self.method == "GET" and not self.key and self.query.get("list-type") == "2"


@dataclass
class Rule:
    """Refuse matching requests with `status`/`code`: always (times=None) or only the first
    `times` matches."""

    name: str
    match: Callable[[Request], bool]
    status: int = 500
    code: str = "InternalError"
    times: int | None = None
    matched: int = 0    # requests that matched, refused or not
    refused: int = 0    # requests answered with the error
    refused_requests: list = field(default_factory=list)


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int):
        self.upstream = (upstream_host, upstream_port)
        self.lock = threading.Lock()
        # hold
        self.hold_armed = False
        self.held = threading.Event()
        self.release = threading.Event()
        self.held_backup_id: str | None = None
        # fail
        self.fail_armed = False
        self.fail_backup_id: str | None = None
        self.stop_seen = False
        self.failures: list[str] = []  # keys whose completion was refused
        self.requests = 0
        # rules
        self.rules: list[Rule] = []
        self.log: list[Request] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="s3proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "FaultProxy":
        self.thread.start()
        return self

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    # -- controls used by make_catalog.py
    def arm_hold(self, fail_after_stop: bool = False) -> None:
        with self.lock:
            self.hold_armed = True
            self.held.clear()
            self.release.clear()
            self.held_backup_id = None
            self.fail_armed = fail_after_stop
            self.fail_backup_id = None
            self.stop_seen = False

    def wait_held(self, timeout: float) -> str | None:
        if not self.held.wait(timeout):
            return None
        return self.held_backup_id

    def release_hold(self) -> None:
        self.release.set()

    def disarm(self) -> None:
        with self.lock:
            self.hold_armed = False
            self.fail_armed = False
            self.release.set()

    # -- controls used by test_failures.py
    def add_rule(self, rule: Rule) -> Rule:
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Drop every rule and the request log."""
        with self.lock:
            self.rules = []
            self.log = []

    def requests_seen(self) -> list[Request]:
        with self.lock:
            return list(self.log)

    def _apply_rules(self, req: Request) -> tuple[int, str] | None:
        for rule in self.rules:
            if not rule.match(req):
                continue
            rule.matched += 1
            if rule.times is None or rule.refused < rule.times:
                rule.refused += 1
                rule.refused_requests.append(req)
                req.injected = rule.name
                return rule.status, rule.code
        return None

    # -- request inspection
    def _before_forward(self, method: str, key: str, query: dict, body: bytes,
                        req: Request | None = None) -> tuple[int, str] | None:
        """Return (status, S3 error code) to refuse the request, or None to forward it."""
        hold = False
        with self.lock:
            self.requests += 1
            if req is not None:
                self.log.append(req)
                refusal = self._apply_rules(req)
                if refusal:
                    return refusal
            m = BACKUP_INFO_RE.search(key)
            if method == "PUT" and m and self.hold_armed and b"status=STARTED" in body:
                self.hold_armed = False
                self.held_backup_id = m.group(1)
                if self.fail_armed:
                    self.fail_backup_id = m.group(1)
                hold = True
            if method == "PUT" and BACKUP_HISTORY_RE.search(key) and self.fail_backup_id:
                self.stop_seen = True
            if (method == "POST" and "uploadId" in query and self.fail_backup_id and self.stop_seen
                    and f"/base/{self.fail_backup_id}/" in key):
                self.failures.append(key)
                return 403, "AccessDenied"
        if hold:
            self.held.set()
            self.release.wait(300)
        return None

    def _handler_class(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _read_body(self) -> bytes | None:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    return b"".join(chunks)
                length = self.headers.get("Content-Length")
                return self.rfile.read(int(length)) if length is not None else None

            def _forward(self):
                body = self._read_body()
                path, _, qs = self.path.partition("?")
                key = urllib.parse.unquote(path)
                query = urllib.parse.parse_qs(qs, keep_blank_values=True)
                bucket, _, obj = key.lstrip("/").partition("/")
                req = Request(self.command, bucket, obj, {k: v[0] for k, v in query.items()})
                refusal = proxy._before_forward(self.command, key, query, body or b"", req)
                if refusal:
                    status, code = refusal
                    req.status = status
                    payload = (
                        '<?xml version="1.0" encoding="UTF-8"?>\n'
                        f"<Error><Code>{code}</Code><Message>refused by the integration test proxy "
                        f"(injected failure)</Message><Resource>{key}</Resource>"
                        "<RequestId>integration-proxy</RequestId></Error>"
                    ).encode()
                    self.send_response_only(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=300)
                try:
                    conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                    for name, value in self.headers.items():
                        if name.lower() in HOP_HEADERS:
                            continue
                        if name.lower() == "content-length" and body is not None:
                            value = str(len(body))
                        conn.putheader(name, value)
                    if body is not None and "content-length" not in (h.lower() for h in self.headers.keys()):
                        conn.putheader("Content-Length", str(len(body)))
                    conn.endheaders(body)
                    resp = conn.getresponse()
                    data = resp.read()
                    req.status = resp.status
                    self.send_response_only(resp.status, resp.reason)
                    for name, value in resp.getheaders():
                        if name.lower() in HOP_HEADERS:
                            continue
                        if name.lower() == "content-length" and self.command != "HEAD":
                            continue
                        self.send_header(name, value)
                    if self.command != "HEAD":
                        self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        return Handler
