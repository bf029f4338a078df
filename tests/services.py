"""Real services for tests: Redis, an SMTP server that records, stalls or refuses, and Celery
worker and beat processes.

Nothing here imports the project, so end-to-end tests can use it as it is. Every service is the
real thing on loopback, never a mock:

- ``redis_url_for_test(db)``: the machine's Redis (127.0.0.1:6379) on its own db number,
  flushed before and after, or — when nothing answers there — our own ``RedisServer``.
- ``RedisServer``: Debian's ``redis-server`` on a free port, data in a temporary directory and
  no persistence, so ``restart()`` loses every queued message as a production restart without
  persistence does; ``stop()``/``start()`` for an outage, ``flush()``, ``kill()``.
- ``SmtpServer``: aiosmtpd in a thread on a free port; ``messages`` holds what it accepted;
  ``mode`` makes it accept, refuse recipients (5xx, echoing the address as real servers do),
  defer them (4xx), stall before DATA (nothing delivered) or stall after it (delivered, the
  reply never comes); ``before_354`` and ``before_250`` run a function of the test at those two
  moments of a conversation (take a lock, record a death, kill a database connection).
- ``CeleryProcess`` with ``start_worker``/``start_beat``: ``celery -A <app>`` subprocesses
  (prefork pool, so task time limits apply) with their logs in a file; ``kill_pool_child()``
  SIGKILLs the process running a task, ``kill()`` the whole worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import psutil

LOCAL = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOCAL, 0))
        return sock.getsockname()[1]


def redis_answers(port: int, host: str = LOCAL, timeout: float = 0.5) -> bool:
    """True when a Redis server answers PING at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


MAX_WAIT_SCALE = 10.0


def wait_scale() -> float:
    """How many times longer than on a quiet machine a wait on a service may take.

    ``TEST_WAIT_SCALE`` when set (a known-slow CI machine); otherwise the 1-minute load average
    per core, at least 1 and at most ``MAX_WAIT_SCALE``: on a 2-core machine at load 12 a
    service takes about six times as long to start or answer, so a 30 s limit becomes 180 s.
    Read at each wait, since the load changes during a run. Waits still end as soon as the
    service is ready: only the limit grows.
    """
    configured = os.environ.get("TEST_WAIT_SCALE")
    if configured:
        return max(1.0, float(configured))
    per_core = os.getloadavg()[0] / (os.cpu_count() or 1)
    return min(MAX_WAIT_SCALE, max(1.0, per_core))


def scaled(seconds: float) -> float:
    """``seconds`` (the limit on a quiet machine) times ``wait_scale()``."""
    return seconds * wait_scale()


def wait_for(predicate, *, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll ``predicate`` until it returns a true value (returned) or the limit passes.

    ``timeout`` is the limit on a quiet machine; the wait allows ``scaled(timeout)``, and the
    error names what it waited for, how long, and the scale it used."""
    scale = wait_scale()
    limit = timeout * scale
    started = time.monotonic()
    while True:
        value = predicate()
        if value:
            return value
        waited = time.monotonic() - started
        if waited > limit:
            raise TimeoutError(
                f"timed out after {waited:.0f} s waiting for {what}"
                f" (limit {timeout} s x load scale {scale:.1f})"
            )
        time.sleep(interval)


def _flush_db(port: int, db: int, host: str = LOCAL) -> None:
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(f"SELECT {db}\r\nFLUSHDB\r\n".encode())
        received = b""
        while received.count(b"\r\n") < 2:
            chunk = sock.recv(64)
            if not chunk:
                break
            received += chunk
    if received.count(b"+OK") < 2:
        raise RuntimeError(f"FLUSHDB on db {db} failed: {received!r}")


class RedisServer:
    """Our own ``redis-server`` (Debian's binary) on a free port, without persistence."""

    def __init__(self, port: int | None = None):
        self.binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="test-redis-"))
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://{LOCAL}:{self.port}/{db}"

    def start(self) -> RedisServer:
        if self.process is not None and self.process.poll() is None:
            return self
        log = open(self.dir / "redis.log", "ab")  # noqa: SIM115 - the child keeps it open
        self.process = subprocess.Popen(  # noqa: S603 - fixed argument lists
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                LOCAL,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                "--daemonize",
                "no",
            ],  # fmt: skip
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_for(lambda: redis_answers(self.port), timeout=10, what="redis-server to answer")
        return self

    def stop(self) -> None:
        """Stop the server (SIGTERM; nothing is saved): the broker is unreachable until
        ``start()``, and what was queued is gone."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
        wait_for(lambda: not redis_answers(self.port), timeout=5, what="redis-server to stop")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def flush(self) -> None:
        with socket.create_connection((LOCAL, self.port), timeout=5) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            if not sock.recv(16).startswith(b"+OK"):
                raise RuntimeError("FLUSHALL failed")

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def redis_url_for_test(db: int) -> Iterator[str]:
    """A Redis URL of one's own for a test: db ``db`` of the machine's server (flushed before
    and after), or a private ``RedisServer`` when nothing answers at 127.0.0.1:6379 or when
    ``TEST_REDIS=own`` (several checkouts testing at once must not flush each other's db)."""
    if os.environ.get("TEST_REDIS") != "own" and redis_answers(6379):
        _flush_db(6379, db)
        try:
            yield f"redis://{LOCAL}:6379/{db}"
        finally:
            _flush_db(6379, db)
    else:
        with RedisServer() as server:
            yield server.url(db)


@dataclass
class ReceivedMessage:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    received_at: float = field(default_factory=time.time)  # epoch seconds

    @property
    def message(self) -> email.message.Message:
        return email.message_from_bytes(self.data)

    def header(self, name: str) -> str:
        return str(self.message.get(name, ""))


@dataclass
class _SmtpState:
    messages: list[ReceivedMessage] = field(default_factory=list)
    mode: str = "accept"
    refused: int = 0
    stalled: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)
    before_354: Callable[[], None] | None = None
    before_250: Callable[[ReceivedMessage], None] | None = None


class SmtpServer:
    """A local SMTP server (aiosmtpd) that records what it accepts.

    ``mode``: ``accept``; ``refuse`` (550 for every recipient, the reply naming the address as
    many servers do); ``defer`` (451, try later); ``stall_before_data`` (RCPT is not answered
    until ``release()``: nothing is delivered); ``stall_after_data`` (the message is recorded,
    but the final reply waits until ``release()``, as a server that hangs after accepting).
    """

    MODES = ("accept", "refuse", "defer", "stall_before_data", "stall_after_data")

    def __init__(self, port: int | None = None):
        # aiosmtpd logs every command, addresses included, at INFO: keep the test SMTP
        # server's own chatter out of the logs that tests search for leaked addresses.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self.state = _SmtpState()
        self.port = port or free_port()
        self.controller = _controller_class()(_Handler(self.state), hostname=LOCAL, port=self.port)
        self.controller.state = self.state

    @property
    def before_354(self) -> Callable[[], None] | None:
        return self.state.before_354

    @before_354.setter
    def before_354(self, hook: Callable[[], None] | None) -> None:
        """Run ``hook()`` when a client sends DATA, before the server answers 354 (the client
        waits for it meanwhile, up to its timeout)."""
        self.state.before_354 = hook

    @property
    def before_250(self) -> Callable[[ReceivedMessage], None] | None:
        return self.state.before_250

    @before_250.setter
    def before_250(self, hook: Callable[[ReceivedMessage], None] | None) -> None:
        """Run ``hook(message)`` once a message is recorded, before the server's 250."""
        self.state.before_250 = hook

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self.state.lock:
            return list(self.state.messages)

    @property
    def mode(self) -> str:
        return self.state.mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in self.MODES:
            raise ValueError(f"unknown SMTP server mode {value!r}")
        # A new event: conversations stalled before stay released.
        self.state.release = threading.Event()
        self.state.mode = value

    def release(self) -> None:
        """Let stalled conversations go on, and accept from now on."""
        self.state.mode = "accept"
        self.state.release.set()

    @property
    def stalled(self) -> int:
        return self.state.stalled

    def clear(self) -> None:
        """Forget what was received, refused and stalled so far, and the hooks."""
        self.state.before_354 = None
        self.state.before_250 = None
        with self.state.lock:
            self.state.messages.clear()
            self.state.refused = 0
            self.state.stalled = 0

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.state.release.set()
        self.controller.stop()

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _controller_class():
    """aiosmtpd's controller, with the ``before_354`` hook (aiosmtpd has no hook there)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP

    class HookedSMTP(SMTP):
        state: _SmtpState

        async def push(self, status: str) -> None:
            hook = self.state.before_354
            if status.startswith("354") and hook is not None:
                await asyncio.get_running_loop().run_in_executor(None, hook)
            await super().push(status)

    class HookedController(Controller):
        state: _SmtpState

        def factory(self):
            server = HookedSMTP(self.handler, **self.SMTP_kwargs)
            server.state = self.state
            return server

    return HookedController


class _Handler:
    def __init__(self, state: _SmtpState):
        self.state = state

    async def _stall(self) -> None:
        self.state.stalled += 1
        release = self.state.release
        while not release.is_set():
            await asyncio.sleep(0.05)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        mode = self.state.mode
        if mode == "refuse":
            self.state.refused += 1
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if mode == "defer":
            return f"451 4.3.0 <{address}>: Temporary failure, try again later"
        if mode == "stall_before_data":
            await self._stall()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        received = ReceivedMessage(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
        with self.state.lock:
            self.state.messages.append(received)
        hook = self.state.before_250
        if hook is not None:
            await asyncio.get_running_loop().run_in_executor(None, hook, received)
        if self.state.mode == "stall_after_data":
            await self._stall()
        return "250 Message accepted for delivery"


def database_url(settings_dict: dict) -> str:
    """A ``postgres://`` URL for a Django database settings dict (e.g. the test database)."""
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or LOCAL
    if host.startswith("/"):  # a Unix socket directory (the embedded server)
        host = quote(host, safe="")
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


class CeleryProcess:
    """One ``celery -A <app> …`` subprocess in its own process group, logging to a file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path, cwd: Path):
        self.args = args
        self.env = env
        self.log_path = log_path
        self.cwd = cwd
        self.process: subprocess.Popen | None = None

    def start(self) -> CeleryProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it open
        self.process = subprocess.Popen(  # noqa: S603 - fixed argument lists
            [sys.executable, "-m", "celery", *self.args],
            env=self.env,
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_ready(self, text: str = "ready.", timeout: float = 60) -> None:
        def ready():
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"celery exited early:\n{self.log()[-4000:]}")
            return text in self.log()

        wait_for(ready, timeout=timeout, what=f"{text!r} in {self.log_path}")

    def pool_children(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.pid).children()
        except psutil.NoSuchProcess:
            return []

    def kill_pool_child(self) -> int:
        """SIGKILL one pool process (as the OOM killer would); returns its pid."""
        children = self.pool_children()
        if not children:
            raise RuntimeError("the worker has no pool process to kill")
        victim = children[0]
        victim.send_signal(signal.SIGKILL)
        return victim.pid

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool): nothing is cleaned up."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 15) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL the group if it does not end in time."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # stray pool processes


def celery_env(base: dict[str, str] | None = None, **values: object) -> dict[str, str]:
    """The environment of a Celery subprocess: ``base`` (default: this process's) plus
    ``values`` as strings."""
    env = dict(os.environ if base is None else base)
    env.update({key: str(value) for key, value in values.items()})
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def start_worker(
    *,
    app: str,
    env: dict[str, str],
    workdir: Path,
    name: str = "worker1",
    concurrency: int = 1,
    queues: str | None = None,
    wait: bool = True,
) -> CeleryProcess:
    """A ``celery worker`` (prefork pool of ``concurrency`` processes) named ``name@localhost``."""
    args = [
        "-A", app, "worker",
        "--loglevel=INFO",
        "--pool=prefork",
        f"--concurrency={concurrency}",
        f"--hostname={name}@localhost",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    if queues:
        args.append(f"--queues={queues}")
    worker = CeleryProcess(args, env, workdir / f"{name}.log", cwd=Path.cwd()).start()
    if wait:
        worker.wait_ready()
    return worker


def start_beat(*, app: str, env: dict[str, str], workdir: Path, name: str = "beat1"):
    """A ``celery beat`` with its schedule file under ``workdir``."""
    args = [
        "-A", app, "beat",
        "--loglevel=INFO",
        f"--schedule={workdir / (name + '-schedule')}",
        f"--pidfile={workdir / (name + '.pid')}",
    ]  # fmt: skip
    beat = CeleryProcess(args, env, workdir / f"{name}.log", cwd=Path.cwd()).start()
    beat.wait_ready("beat: Starting...")
    return beat


# --- a fake SMS provider ---------------------------------------------------------------------


@dataclass
class ReceivedText:
    """One text a ``SmsProvider`` took: its form fields (To, From, Body, StatusCallback) and
    the sid it answered with."""

    fields: dict[str, str]
    sid: str
    received_at: float = field(default_factory=time.time)


class SmsProvider:
    """Twilio's Messages API on loopback: ``POST /2010-04-01/Accounts/{sid}/Messages.json`` with
    HTTP basic auth (the account SID and auth token), answering as Twilio does (201 and the
    message's JSON, or an error's JSON). ``mode``:

    - ``accept``: takes the text (``texts``) and answers 201;
    - ``rate_limit``: 429 with Twilio's error 20429, nothing taken;
    - ``error``: 500, and the text taken (the provider failed after queuing it);
    - ``unavailable``: 503, nothing taken;
    - ``refuse``: 400 with Twilio's error 21211 (invalid 'To'), nothing taken;
    - ``hang``: takes the text and never answers (until ``release()`` or the client gives up);
    - ``drop``: takes the text and closes the connection without an answer.

    ``before_answer`` runs a function of the test after a text is taken, before the answer.
    """

    def __init__(self, account_sid: str = "AC" + "0" * 32, auth_token: str = "fake-token"):  # noqa: S107
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.mode = "accept"
        self.texts: list[ReceivedText] = []
        self.requests = 0
        self.before_answer: Callable[[ReceivedText], None] | None = None
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{LOCAL}:{self._server.server_address[1]}"

    def release(self) -> None:
        self._release.set()

    def hold(self) -> None:
        """``hang`` hangs again (after a ``release()``)."""
        self._release.clear()

    def start(self) -> SmsProvider:
        import base64
        import json
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs

        provider = self
        expected_auth = (
            "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        )

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                return None

            def _answer(self, status: int, payload: dict) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                with provider._lock:
                    provider.requests += 1
                    mode = provider.mode
                path = f"/2010-04-01/Accounts/{provider.account_sid}/Messages.json"
                if self.path != path or self.headers.get("Authorization") != expected_auth:
                    return self._answer(401, {"code": 20003, "message": "Authenticate"})
                if mode == "rate_limit":
                    return self._answer(429, {"code": 20429, "message": "Too Many Requests"})
                if mode == "unavailable":
                    return self._answer(503, {"code": 20503, "message": "Unavailable"})
                if mode == "refuse":
                    message = f"The 'To' number {form.get('To')} is not a valid phone number."
                    return self._answer(400, {"code": 21211, "message": message, "status": 400})
                text = ReceivedText(fields=form, sid="SM" + os.urandom(16).hex())
                with provider._lock:
                    provider.texts.append(text)
                if provider.before_answer:
                    provider.before_answer(text)
                if mode == "error":
                    return self._answer(500, {"code": 20500, "message": "Internal Server Error"})
                if mode == "hang":
                    provider._release.wait(120)
                    self.close_connection = True
                    return None
                if mode == "drop":
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return None
                return self._answer(
                    201,
                    {
                        "sid": text.sid,
                        "account_sid": provider.account_sid,
                        "to": form.get("To"),
                        "from": form.get("From"),
                        "body": form.get("Body"),
                        "status": "queued",
                        "num_segments": "1",
                    },
                )

        self._server = ThreadingHTTPServer((LOCAL, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> SmsProvider:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
