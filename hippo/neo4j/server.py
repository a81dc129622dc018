"""A local Neo4j Community server with Browser, assembled from Maven Central; no Docker.

Everything lives in one project-local folder, ``HOME`` (``./.neo4j`` unless
``HIPPO_NEO4J_HOME`` or ``--home`` says otherwise)::

    HOME/pom.xml        the jar list (copied from hippo/neo4j/assets/pom.xml)
    HOME/lib/           the server's jars, fetched once with `mvn dependency:copy-dependencies`
    HOME/browser/       the pristine Neo4j Browser jar; a copy with hippo's style and guide
                        under browser/hippo/ goes to lib/ at every start
    HOME/conf/          neo4j.conf, written at every start (loopback only)
    HOME/data/, logs/   the database and its logs (logs/console.log is the server's stdout)
    HOME/password       the generated password of user neo4j (mode 0600)
    HOME/server.json    pid, ports and auth of the running server

The server JVM is started directly (``org.neo4j.server.CommunityEntryPoint``) with the flags
Neo4j's own launcher passes, so its PID is the one we stop. Only a process whose command
line names this HOME is ever signalled.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import zipfile
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from hippo.errors import Neo4jError

NEO4J_VERSION = "5.26.30"
"""Neo4j 5.26 LTS, the last line that runs on Java 17."""
BROWSER_VERSION = "5.24.0"
"""The newest Neo4j Browser published on Maven Central; it talks Bolt to any 5.x server."""
USER = "neo4j"
ENTRY_POINT = "org.neo4j.server.CommunityEntryPoint"
ADMIN_TOOL = "org.neo4j.cli.AdminTool"
ASSETS = ("hippo.grass", "guide.html")
"""Files served by the server at ``/browser/hippo/`` (style and guide)."""

# The flags Neo4j 5.x's launcher gives the server JVM (minus AlwaysPreTouch, which only
# slows a small server's start); the --add-opens keep vector-index population working.
_JVM_FLAGS = (
    "-XX:+UseG1GC", "-XX:-OmitStackTraceInFastThrow", "-XX:+UnlockExperimentalVMOptions",
    "-XX:+TrustFinalNonStaticFields", "-XX:+DisableExplicitGC", "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true", "-Djdk.tls.ephemeralDHKeySize=2048",
    "--add-opens=java.base/java.nio=ALL-UNNAMED", "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED", "--enable-native-access=ALL-UNNAMED",
    "-Dlog4j2.disable.jmx=true", "-Dfile.encoding=UTF-8",
)


def default_home() -> Path:
    """``HIPPO_NEO4J_HOME`` or ``./.neo4j``, absolute."""
    return Path(os.environ.get("HIPPO_NEO4J_HOME") or ".neo4j").absolute()


@dataclass(frozen=True)
class ServerInfo:
    """A running local server: where it listens and how to log in."""

    home: str
    pid: int
    bolt_uri: str
    http_uri: str
    auth: bool
    user: str
    password: str
    version: str = NEO4J_VERSION

    @property
    def browser_url(self) -> str:
        """Neo4j Browser, connecting to this server (without auth when auth is off)."""
        url = f"{self.http_uri}/browser/?dbms={self.bolt_uri}"
        return url + ("" if self.auth else "&preselectAuthMethod=NO_AUTH")

    @property
    def driver_auth(self) -> tuple[str, str] | None:
        """``auth=`` for ``neo4j.GraphDatabase.driver``."""
        return (self.user, self.password) if self.auth else None

    def to_dict(self) -> dict[str, Any]:
        """JSON shape of ``hippo neo4j status --json``."""
        return {**asdict(self), "browser_url": self.browser_url}


# --------------------------------------------------------------------------- install


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise Neo4jError("Java 17 or 21 is needed to run Neo4j 5.26 and none was found; install it (apt-get install openjdk-17-jre-headless) or set JAVA_HOME")
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    m = re.search(r'version "(\d+)', out)
    if not m or int(m.group(1)) < 17:
        raise Neo4jError(f"{java} is not Java 17 or newer ({out.splitlines()[0] if out else 'no version'}); install openjdk-17 or set JAVA_HOME")
    return java


def _asset(name: str) -> bytes:
    return resources.files("hippo.neo4j").joinpath("assets", name).read_bytes()


def install(home: Path | None = None, lib_from: Path | None = None) -> Path:
    """Fetch the server's jars into ``HOME/lib`` unless they are there; returns the lib folder.

    ``lib_from`` shares the jars of another home instead (a symlink), e.g. for a
    throw-away server that checks a CSV import.
    """
    home = (home or default_home()).absolute()
    lib = home / "lib"
    marker = lib / ".hippo-installed"
    if marker.exists() and marker.read_text().strip() == f"{NEO4J_VERSION} {BROWSER_VERSION}":
        return lib
    home.mkdir(parents=True, exist_ok=True)
    if lib_from is not None:
        source = install(lib_from)
        if lib.is_symlink() or lib.exists():
            lib.unlink() if lib.is_symlink() else shutil.rmtree(lib)
        lib.symlink_to(source)
        (home / "browser").mkdir(exist_ok=True)
        return lib
    mvn = shutil.which("mvn")
    if not mvn:
        raise Neo4jError("Maven (mvn) is needed to fetch Neo4j from Maven Central; install it (apt-get install maven) and retry")
    (home / "pom.xml").write_bytes(_asset("pom.xml"))
    partial = home / "lib.partial"
    shutil.rmtree(partial, ignore_errors=True)
    cmd = [
        mvn, "-B", "-q", "-f", str(home / "pom.xml"), "dependency:copy-dependencies",
        f"-DoutputDirectory={partial}", "-DincludeScope=runtime",
        f"-Dneo4j.version={NEO4J_VERSION}", f"-Dneo4j-browser.version={BROWSER_VERSION}",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=home)
    if done.returncode != 0:
        tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
        raise Neo4jError(f"fetching Neo4j {NEO4J_VERSION} from Maven Central failed ({tail}); check the network to Maven Central and retry")
    browser = home / "browser"
    browser.mkdir(exist_ok=True)
    for jar in partial.glob("neo4j-browser-*.jar"):
        os.replace(jar, browser / jar.name)
    if lib.exists():
        shutil.rmtree(lib)
    os.replace(partial, lib)
    marker.write_text(f"{NEO4J_VERSION} {BROWSER_VERSION}\n")
    return lib


def _browser_jar(home: Path) -> None:
    """Put Neo4j Browser plus hippo's style and guide (under ``browser/hippo/``) in lib/.

    The server serves the first ``browser/`` folder on its classpath, so the assets must
    share the Browser's jar. Rewritten only when the assets changed, atomically.
    """
    lib = home / "lib"
    pristine = lib.resolve().parent / "browser" / f"neo4j-browser-{BROWSER_VERSION}.jar"
    target = lib / f"neo4j-browser-{BROWSER_VERSION}-hippo.jar"
    payload = {name: _asset(name) for name in ASSETS}
    stamp = hashlib.sha256(b"".join(hashlib.sha256(b).digest() for b in payload.values())).hexdigest()
    stamp_file = lib / ".hippo-browser-assets"
    if target.exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
        return
    if not pristine.exists():
        raise Neo4jError(f"{pristine} is missing; delete {lib} and run `hippo neo4j start` again to re-fetch Neo4j")
    tmp = lib / f".{target.name}.{os.getpid()}"
    shutil.copyfile(pristine, tmp)
    with zipfile.ZipFile(tmp, "a") as jar:
        for name, data in payload.items():
            jar.writestr(f"browser/hippo/{name}", data)
    os.replace(tmp, target)
    stamp_file.write_text(stamp)


# --------------------------------------------------------------------------- config


def _conf(home: Path, bolt_port: int, http_port: int, auth: bool, pagecache: str) -> str:
    base = f"http://127.0.0.1:{http_port}/browser/hippo"
    settings = {
        "server.default_listen_address": "127.0.0.1",
        "server.bolt.enabled": "true",
        "server.bolt.listen_address": f"127.0.0.1:{bolt_port}",
        "server.bolt.advertised_address": f"127.0.0.1:{bolt_port}",
        "server.bolt.tls_level": "DISABLED",
        "server.http.enabled": "true",
        "server.http.listen_address": f"127.0.0.1:{http_port}",
        "server.http.advertised_address": f"127.0.0.1:{http_port}",
        "server.https.enabled": "false",
        "dbms.security.auth_enabled": "true" if auth else "false",
        "dbms.usage_report.enabled": "false",
        "client.allow_telemetry": "false",
        "initial.dbms.default_database": "neo4j",
        "server.directories.data": str(home / "data"),
        "server.directories.logs": str(home / "logs"),
        "server.directories.plugins": str(home / "plugins"),
        "server.directories.import": str(home / "import"),
        "server.directories.run": str(home / "run"),
        "server.memory.pagecache.size": pagecache,
        "dbms.memory.transaction.total.max": "1g",
        "db.tx_log.rotation.retention_policy": "false",
        "browser.remote_content_hostname_whitelist": "localhost,127.0.0.1",
        "browser.post_connect_cmd": f"style {base}/hippo.grass; play {base}/guide.html",
    }
    head = "# Written by `hippo neo4j start` at every start; edit hippo/neo4j/server.py instead.\n"
    return head + "".join(f"{k}={v}\n" for k, v in settings.items())


def _prepare(home: Path, bolt_port: int, http_port: int, auth: bool, pagecache: str, java: str) -> str:
    """Write the config; on first use generate the password and set it. Returns the password."""
    for sub in ("conf", "data", "logs", "plugins", "import", "run", "run/tmp"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    (home / "conf" / "neo4j.conf").write_text(_conf(home, bolt_port, http_port, auth, pagecache))
    pw_file = home / "password"
    if pw_file.exists():
        return pw_file.read_text().strip()
    if (home / "data" / "databases" / "system").exists():
        raise Neo4jError(f"{pw_file} is missing but {home / 'data'} already has a database; delete {home / 'data'} to start afresh")
    password = secrets.token_urlsafe(12)
    _admin(home, java, ["dbms", "set-initial-password", password])
    pw_file.touch(mode=0o600)
    pw_file.write_text(password + "\n")
    return password


def _admin(home: Path, java: str, args: list[str], heap: str = "1g") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NEO4J_HOME": str(home), "NEO4J_CONF": str(home / "conf")}
    cmd = [java, f"-Xmx{heap}", "-cp", f"{home / 'lib'}/*", f"-Dbasedir={home}", ADMIN_TOOL, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=home)
    if done.returncode != 0:
        lines = [ln for ln in (done.stdout + done.stderr).strip().splitlines() if ln.strip()]
        raise Neo4jError(f"neo4j-admin {' '.join(args[:3])} failed: {' | '.join(lines[-3:])}")
    return done


# --------------------------------------------------------------------------- processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _check_port(port: int, flag: str) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise Neo4jError(f"port {port} on 127.0.0.1 is in use (another Neo4j?); stop it or pass {flag} with a free port (0 picks one)") from None


def _is_ours(pid: int, home: Path) -> bool:
    """True when ``pid`` is a live Neo4j server started for ``home`` (not a zombie, not a reused PID)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    if state == "Z":
        _reap(pid)
        return False
    return ENTRY_POINT.encode() in cmdline and f"--home-dir={home}".encode() in cmdline


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def status(home: Path | None = None) -> ServerInfo | None:
    """The server running for ``home``, or None."""
    home = (home or default_home()).absolute()
    try:
        state = json.loads((home / "server.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not _is_ours(int(state["pid"]), home):
        return None
    return ServerInfo(
        home=str(home), pid=int(state["pid"]),
        bolt_uri=f"bolt://127.0.0.1:{state['bolt_port']}", http_uri=f"http://127.0.0.1:{state['http_port']}",
        auth=bool(state["auth"]), user=USER, password=(home / "password").read_text().strip(),
        version=state.get("version", NEO4J_VERSION),
    )


def _log_tail(home: Path, lines: int = 3) -> str:
    try:
        text = (home / "logs" / "console.log").read_text(errors="replace")
    except OSError:
        return "no log"
    picked = [ln for ln in text.splitlines() if "ERROR" in ln or "Exception" in ln] or text.splitlines()
    return " | ".join(ln.strip() for ln in picked[-lines:])


def start(
    home: Path | None = None,
    *,
    auth: bool = True,
    bolt_port: int = 7687,
    http_port: int = 7474,
    heap: str = "1g",
    pagecache: str = "512m",
    timeout: float = 180.0,
    lib_from: Path | None = None,
) -> ServerInfo:
    """Start a local server for ``home`` (fetching Neo4j on first use) and wait until its
    ``neo4j`` database answers over Bolt. A port of 0 picks a free one.

    Returns the running server; if one already runs for ``home`` it is returned as is.
    """
    home = (home or default_home()).absolute()
    running = status(home)
    if running is not None:
        return running
    java = _java()
    install(home, lib_from)
    bolt_port = bolt_port or _free_port()
    http_port = http_port or _free_port()
    _check_port(bolt_port, "--bolt-port")
    _check_port(http_port, "--http-port")
    password = _prepare(home, bolt_port, http_port, auth, pagecache, java)
    _browser_jar(home)
    cmd = [
        java, f"-Xms{heap}", f"-Xmx{heap}", *_JVM_FLAGS, f"-Djava.io.tmpdir={home / 'run' / 'tmp'}",
        "-cp", f"{home / 'plugins'}/*:{home / 'conf'}/*:{home / 'lib'}/*",
        ENTRY_POINT, f"--home-dir={home}", f"--config-dir={home / 'conf'}", "--console-mode",
    ]
    with open(home / "logs" / "console.log", "ab") as log:
        proc = subprocess.Popen(cmd, cwd=home, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    state = {"pid": proc.pid, "bolt_port": bolt_port, "http_port": http_port, "auth": auth, "version": NEO4J_VERSION, "started": time.time()}
    (home / "server.json").write_text(json.dumps(state, indent=1) + "\n")
    info = ServerInfo(str(home), proc.pid, f"bolt://127.0.0.1:{bolt_port}", f"http://127.0.0.1:{http_port}", auth, USER, password)
    try:
        _wait_ready(info, proc, timeout)
    except BaseException:
        _terminate(proc.pid, home, 30.0)
        raise
    return info


def _wait_ready(info: ServerInfo, proc: subprocess.Popen[bytes], timeout: float) -> None:
    from neo4j import GraphDatabase
    from neo4j.exceptions import AuthError

    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Neo4jError(f"Neo4j exited during start (code {proc.returncode}): {_log_tail(Path(info.home))}; see {info.home}/logs/console.log")
        try:
            with GraphDatabase.driver(
                info.bolt_uri, auth=info.driver_auth, connection_timeout=2.0, max_transaction_retry_time=0.0,
                notifications_min_severity="OFF",
            ) as driver:
                driver.verify_connectivity()
                driver.execute_query("RETURN 1", database_="neo4j")
            return
        except AuthError as exc:
            raise Neo4jError(f"Neo4j at {info.bolt_uri} refused the password in {info.home}/password ({exc.message}); delete {info.home}/data and {info.home}/password to start afresh") from None
        except Exception as exc:  # not up yet: refused, unavailable, database starting
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.5)
    raise Neo4jError(f"Neo4j did not answer on {info.bolt_uri} within {timeout:.0f} s ({last}); see {info.home}/logs/console.log, or raise --timeout")


def _terminate(pid: int, home: Path, timeout: float) -> None:
    """SIGTERM (Neo4j checkpoints and closes its stores), then SIGKILL after ``timeout``."""
    if not _is_ours(pid, home):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not _is_ours(pid, home):
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    _reap(pid)


def stop(home: Path | None = None, timeout: float = 60.0) -> ServerInfo | None:
    """Stop the server started for ``home``; returns what was stopped, or None if none ran."""
    home = (home or default_home()).absolute()
    info = status(home)
    if info is not None:
        _terminate(info.pid, home, timeout)
    (home / "server.json").unlink(missing_ok=True)
    return info


def admin_import(home: Path, csv_dir: Path, database: str = "neo4j") -> float:
    """``neo4j-admin database import full`` of a CSV export into ``database`` of ``home``,
    replacing it. The server of ``home`` must be stopped. Returns the seconds taken."""
    home = home.absolute()
    csv_dir = Path(csv_dir).absolute()
    if status(home) is not None:
        raise Neo4jError(f"the Neo4j server of {home} is running; stop it first (`hippo neo4j stop`), import, then start it again")
    try:
        plan = json.loads((csv_dir / "import.json").read_text())
    except (OSError, json.JSONDecodeError):
        raise Neo4jError(f"{csv_dir} has no readable import.json; write it with `hippo export neo4j INDEX --csv {csv_dir}`") from None
    java = _java()
    install(home)
    _prepare(home, 7687, 7474, True, "512m", java)
    args = ["database", "import", "full", database, "--overwrite-destination=true", *plan["args"]]
    args += [f"--nodes={label}={csv_dir / f}" for label, f in plan["nodes"]]
    args += [f"--relationships={rel}={csv_dir / f}" for rel, f in plan["relationships"]]
    t0 = time.perf_counter()
    _admin(home, java, args)
    return time.perf_counter() - t0
