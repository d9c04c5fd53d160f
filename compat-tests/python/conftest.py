"""Fixtures that run the real `wharf` binary for the WAHA-SDK compatibility tests.

Every test that takes the `server` fixture runs twice: once against the embedded
(SQLite) store and once against MongoDB (a SecantusDB process started once per
pytest session from `MONGO_SERVER_BIN`). Each test gets its own wharf process,
store directory and Mongo namespace, so tests never see each other's sessions.

Environment knobs:
  WHARF_BIN            wharf binary (default: <repo>/target/debug/wharf); must be a
                       `--features mock-network` build: the harness sets WHARF_WA_URL
                       to a closed loopback port so no session ever dials WhatsApp
  MONGO_SERVER_BIN     secantusd-py (or any mongod-like binary taking
                       --host/--port/--storage-path); unset = mongo cases skipped
  WHARF_REQUIRE_MONGO  "1" turns that skip into a failure (.ci/run sets it)
  WHARF_FAIL_ON_PANIC  "1" fails a test whose wharf printed a Rust panic (default:
                       listed at the end of the run)

Command-line option: --store=embedded|mongo|all (default all).
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from waha import WahaClient

REPO = Path(__file__).resolve().parents[2]
WHARF_BIN = Path(os.environ.get("WHARF_BIN") or REPO / "target" / "debug" / "wharf")

STARTUP_DEADLINE_S = 20.0
SHUTDOWN_DEADLINE_S = 10.0
MONGO_STARTUP_DEADLINE_S = 30.0

STORES = ["embedded", "mongo"]


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    """A port that was free a moment ago (bind to 0, read it back, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_key() -> str:
    return secrets.token_hex(16)  # 32 hex chars


def _hermetic_env(extra: dict[str, str]) -> dict[str, str]:
    """The caller's environment minus anything that configures WAHA/wharf, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not (k.startswith(("WAHA_", "WHATSAPP_")) or k in ("PORT", "DEBUG"))}
    env.update(extra)
    return env


def _die_with_parent() -> None:
    """preexec_fn: SIGTERM the child when pytest dies (Linux PR_SET_PDEATHSIG), so a
    killed test run never leaves wharf or the Mongo server behind."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def pytest_configure(config):
    # `timeout` (in .ci/run) sends SIGTERM: turn it into KeyboardInterrupt so that
    # fixture teardown still stops every server.
    def _interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _interrupt)


class WharfServer:
    """One wharf process (restartable on the same store)."""

    def __init__(self, workdir: Path, env: dict[str, str], api_key: str | None, label: str):
        self.workdir = workdir
        self.env = env
        self.api_key = api_key
        self.label = label
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.generation = 0
        self.log_paths: list[Path] = []
        self.expected_exit = False

    # -- lifecycle -----------------------------------------------------------------

    @property
    def base_url(self) -> str:
        assert self.port is not None, "server not started"
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if not WHARF_BIN.exists():
            pytest.fail(
                f"wharf binary not found at {WHARF_BIN}; "
                "build it with `cargo build -p wharf --features mock-network` or set WHARF_BIN",
                pytrace=False,
            )
        self.generation += 1
        self.port = free_port()
        port_var = self.env.get("_WHARF_PORT_VAR", "PORT")  # test hook: WHATSAPP_API_PORT
        env = {k: v for k, v in self.env.items() if k != "_WHARF_PORT_VAR"}
        env[port_var] = str(self.port)
        log = self.workdir / f"wharf-{self.generation}.log"
        self.log_paths.append(log)
        self.expected_exit = False
        with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [str(WHARF_BIN)],
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 (no threads here)
            )
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        last_err: Exception | None = None
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                pytest.fail(
                    f"wharf exited with code {code} during startup\n{self.logs()}",
                    pytrace=False,
                )
            try:
                r = requests.get(f"{self.base_url}/ping", timeout=1)
                if r.status_code == 200:
                    return
                last_err = RuntimeError(f"/ping answered {r.status_code}: {r.text!r}")
            except requests.RequestException as e:
                last_err = e
            time.sleep(0.1)
        self.stop()
        pytest.fail(
            f"wharf did not answer GET /ping within {STARTUP_DEADLINE_S}s (last error: {last_err})\n{self.logs()}",
            pytrace=False,
        )

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after a deadline. Returns the exit code (None if never started)."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(SHUTDOWN_DEADLINE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        return proc.returncode

    def restart(self) -> None:
        """Stop and start again on the same store (same dir / Mongo namespace), new port."""
        self.stop()
        self.start()

    def exited_unexpectedly(self) -> int | None:
        if self.proc is not None and not self.expected_exit:
            return self.proc.poll()
        return None

    # -- clients -------------------------------------------------------------------

    def client(self, api_key: str | None = "default") -> WahaClient:
        key = self.api_key if api_key == "default" else api_key
        return WahaClient(base_url=self.base_url, api_key=key, timeout=30)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.api_key} if self.api_key else {}

    def get(self, path: str, **kw) -> requests.Response:
        return requests.get(self.url(path), headers=kw.pop("headers", self.headers()), timeout=30, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return requests.post(self.url(path), headers=kw.pop("headers", self.headers()), timeout=30, **kw)

    def put(self, path: str, **kw) -> requests.Response:
        return requests.put(self.url(path), headers=kw.pop("headers", self.headers()), timeout=30, **kw)

    def delete(self, path: str, **kw) -> requests.Response:
        return requests.delete(self.url(path), headers=kw.pop("headers", self.headers()), timeout=30, **kw)

    def first_panic(self) -> str | None:
        """The first Rust panic report in this server's output (a few lines), if any."""
        for p in self.log_paths:
            lines = p.read_text(errors="replace").splitlines()
            for i, line in enumerate(lines):
                if "panicked at" in line:
                    return "\n".join(lines[i : i + 3])
        return None

    def logs(self) -> str:
        parts = []
        for p in self.log_paths:
            try:
                text = p.read_text(errors="replace")
            except OSError as e:
                text = f"<unreadable: {e}>"
            if len(text) > 20000:
                text = "...[truncated]...\n" + text[-20000:]
            parts.append(f"----- {self.label} {p.name} -----\n{text}")
        return "\n".join(parts)


# --------------------------------------------------------------------------- MongoDB


class _MongoServer:
    def __init__(self, binary: str, workdir: Path):
        self.log = workdir / "secantus.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [binary, "--host", "127.0.0.1", "--port", "0", "--storage-path", ":memory:"],
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,  # the "listening on" line is on stderr
                preexec_fn=_die_with_parent,  # noqa: PLW1509 (no threads here)
            )
        deadline = time.monotonic() + MONGO_STARTUP_DEADLINE_S
        pattern = re.compile(rb"listening on 127\.0\.0\.1:(\d+)")
        while time.monotonic() < deadline:
            m = pattern.search(self.log.read_bytes())
            if m:
                self.url = f"mongodb://127.0.0.1:{int(m.group(1))}/"
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.close()
        raise RuntimeError(
            f"MongoDB test server ({binary}) did not report its port within "
            f"{MONGO_STARTUP_DEADLINE_S}s:\n{self.log.read_text(errors='replace')}"
        )

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture(scope="session")
def mongo_url(tmp_path_factory) -> Iterator[str]:
    binary = os.environ.get("MONGO_SERVER_BIN")
    if not binary:
        msg = (
            "MONGO_SERVER_BIN is not set: SKIPPING every MongoDB-store case. "
            "Run `export MONGO_SERVER_BIN=$(.ci/install-mongo.sh)` to include them."
        )
        if os.environ.get("WHARF_REQUIRE_MONGO") == "1":
            pytest.fail(msg + " (WHARF_REQUIRE_MONGO=1)", pytrace=False)
        warnings.warn(msg)
        pytest.skip(msg)
    server = _MongoServer(binary, tmp_path_factory.mktemp("mongo"))
    try:
        yield server.url
    finally:
        server.close()


# --------------------------------------------------------------------------- wharf fixtures


def pytest_addoption(parser):
    parser.addoption(
        "--store",
        choices=["all", *STORES],
        default="all",
        help="which session store(s) to run wharf on (default: all)",
    )


def pytest_generate_tests(metafunc):
    """Every test that (indirectly) uses a wharf server runs once per selected store."""
    if "store" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("--store")
        metafunc.parametrize("store", STORES if chosen == "all" else [chosen])


@pytest.fixture
def start_server(request, store, tmp_path) -> Iterator[Callable[..., WharfServer]]:
    """Factory: start_server(api_key=..., **extra_env) -> a running WharfServer on `store`.

    Pass api_key=None together with WAHA_NO_API_KEY="true" for an open server.
    Pass an env value of None to leave that variable unset.
    """
    servers: list[WharfServer] = []
    request.node._wharf_servers = servers
    mongo = request.getfixturevalue("mongo_url") if store == "mongo" else None

    def factory(
        api_key: str | None = "random",
        env_api_key: str | None = None,
        same_store_as: WharfServer | None = None,
        **extra: str | None,
    ) -> WharfServer:
        """api_key: the key clients send ("random" = a fresh 32-hex key, None = none).
        env_api_key: what WAHA_API_KEY is set to (default: api_key itself).
        same_store_as: reuse that server's store dir and Mongo namespace.
        extra: more environment (a None value removes the variable)."""
        n = len(servers) + 1
        workdir = tmp_path / f"wharf{n}"
        workdir.mkdir()
        key = random_key() if api_key == "random" else api_key
        env: dict[str, str] = {
            "WAHA_LOCAL_STORE_BASE_DIR": str(workdir / "sessions"),
            "WAHA_LOG_LEVEL": "debug",
            # Tests only ever talk to loopback: listen there, and point the engine
            # (mock-network build) at a closed local port instead of WhatsApp.
            "WHARF_BIND_HOST": "127.0.0.1",
            "WHARF_WA_URL": f"ws://127.0.0.1:{free_port()}/ws/chat",
        }
        if env_api_key is not None or key is not None:
            env["WAHA_API_KEY"] = env_api_key if env_api_key is not None else key
        if mongo:
            # One MongoDB serves the whole run: give every server its own main database
            # (`waha_{ns}`) and per-session databases (`waha_{session_ns}_{name}`).
            env["WHATSAPP_SESSIONS_MONGO_URL"] = mongo
            env["WAHA_NAMESPACE"] = "ct" + uuid.uuid4().hex[:12]
            env["WAHA_SESSION_NAMESPACE"] = "s" + uuid.uuid4().hex[:7]
        if same_store_as is not None:
            for var in ("WAHA_LOCAL_STORE_BASE_DIR", "WAHA_NAMESPACE", "WAHA_SESSION_NAMESPACE"):
                if var in same_store_as.env:
                    env[var] = same_store_as.env[var]
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        srv = WharfServer(workdir, _hermetic_env(env), key, f"wharf[{store}#{n}]")
        servers.append(srv)
        srv.start()
        return srv

    yield factory

    problems = []
    for srv in servers:
        code = srv.exited_unexpectedly()
        if code is not None:
            problems.append(f"{srv.label} exited by itself with code {code} during the test")
        srv.stop()
        panic = srv.first_panic()
        if panic:
            PANICS.append(f"{request.node.nodeid} ({srv.label}):\n{panic}")
            if os.environ.get("WHARF_FAIL_ON_PANIC") == "1":
                problems.append(f"{srv.label} panicked:\n{panic}")
    if problems:
        pytest.fail("\n".join(problems) + "\n" + "\n".join(s.logs() for s in servers), pytrace=False)


@pytest.fixture
def server(start_server) -> WharfServer:
    """A running wharf with a random API key, on the parametrized store."""
    return start_server()


@pytest.fixture
def client(server) -> Iterator[WahaClient]:
    c = server.client()
    yield c
    c.close()


# --------------------------------------------------------------------------- SDK models


# Places where waha-py's pydantic models (generated from a "cleaned" copy of the spec
# that lost `nullable`) are stricter than WAHA itself. Real WAHA 2026 sends these
# values (waha.md §1.3, §5.1, §9; the spec's own `nullable: true`), so wharf must
# too; anything else the models reject is a compatibility failure.
# (model, location with "*" for list indexes) -> (accepted input, why)
def _is_null(err: dict) -> bool:
    return err["type"] == "missing" or err.get("input", "x") is None


def _is_str(err: dict) -> bool:
    return isinstance(err.get("input"), str)


KNOWN_SDK_MODEL_DIVERGENCES = {
    ("SessionInfo", ("presence",)): (_is_null, "WAHA sends presence:null (issue #2243); model wants a dict"),
    ("SessionInfo", ("timestamps", "activity")): (_is_null, "spec: activity nullable; WAHA sends timestamps:{}"),
    ("WAHAEnvironment", ("browser",)): (_is_null, "WAHA sends browser:null without a browser engine"),
    ("WAHAEnvironment", ("worker", "id")): (_is_null, "spec: worker.id nullable"),
}
for _model in ("SessionInfo", "SessionDTO"):
    KNOWN_SDK_MODEL_DIVERGENCES[(_model, ("config", "webhooks", "*", "events", "*"))] = (
        _is_str,
        "WebhookConfig.events is list[dict] in the SDK (spec items: object); WAHA uses strings",
    )
TOLERATED: set[str] = set()
PANICS: list[str] = []  # wharf panics seen (fail the test only with WHARF_FAIL_ON_PANIC=1)


def sdk_validate(model_cls, data) -> None:
    """Validate a response with waha-py's model; fail on anything but a known divergence."""
    from pydantic import ValidationError

    try:
        model_cls.model_validate(data)
        return
    except ValidationError as exc:
        errors = exc.errors()
    name = model_cls.__name__
    real = []
    for err in errors:
        loc = tuple("*" if isinstance(part, int) else part for part in err["loc"])
        known = KNOWN_SDK_MODEL_DIVERGENCES.get((name, loc))
        if known and known[0](err):
            TOLERATED.add(f"{name}.{'.'.join(loc)}: {known[1]}")
        else:
            real.append(err)
    if real:
        lines = [f"  {'.'.join(map(str, e['loc']))}: {e['msg']} (input={e.get('input')!r})" for e in real]
        pytest.fail(
            f"waha-py model {name} rejects what wharf returned:\n" + "\n".join(lines) + f"\nresponse: {data!r}",
            pytrace=False,
        )


def strip_nulls(value):
    """Drop null members recursively (wharf, like WAHA's DTOs, may omit or echo them)."""
    if isinstance(value, dict):
        return {k: strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_nulls(v) for v in value]
    return value


def pytest_terminal_summary(terminalreporter):
    if PANICS:
        terminalreporter.section("wharf panicked (set WHARF_FAIL_ON_PANIC=1 to fail on this)")
        for entry in PANICS:
            terminalreporter.write_line(entry)
    if TOLERATED:
        terminalreporter.section("waha-py model strictness tolerated (SDK vs WAHA, not wharf bugs)")
        for line in sorted(TOLERATED):
            terminalreporter.write_line(line)


# --------------------------------------------------------------------------- reporting


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the wharf logs of a failed test to its report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for srv in getattr(item, "_wharf_servers", []):
            report.sections.append((f"{srv.label} output", srv.logs()))
