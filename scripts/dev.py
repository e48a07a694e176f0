#!/usr/bin/env python3
"""Local services and the two commands behind `make run` and `make test`.

With no DATABASE_URL, a project-local PostgreSQL cluster is created (once) and
started on a private unix socket; with no REDIS_URL, the same for Redis. The
four database roles and the database are created idempotently. Whatever this
script starts, it stops again when the command ends (Ctrl-C included).

A DATABASE_URL that the developer sets is their own database: `run` migrates
it but seeds demo accounts into it only with SEED_DEMO=1, and `test` leaves it
alone (pytest creates and drops its own test database beside it).

    python scripts/dev.py run              migrate, seed once, serve + worker
    python scripts/dev.py test [ARGS...]   migrate and check_rls (local cluster only), pytest ARGS
    python scripts/dev.py services         start services, write .local/dev.env
    python scripts/dev.py stop             stop the project-local services
"""

from __future__ import annotations

import base64
import hashlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".local"
DEV_ENV = LOCAL / "dev.env"
PY = sys.executable
PG_PORT = 5432
DB_NAME = "sagerock"
ROLES = {
    "owner": "sagerock_owner",
    "app": "sagerock_app",
    "staff": "sagerock_staff",
    "service": "sagerock_service",
}
IS_ROOT = os.geteuid() == 0
# A short, per-checkout path: unix socket paths are limited to ~100 bytes.
RUN_DIR = Path("/tmp") / f"sagerock-{os.geteuid()}-{hashlib.sha256(str(ROOT).encode()).hexdigest()[:10]}"


def say(message: str) -> None:
    print(f"[sagerock] {message}", flush=True)


def fail(message: str) -> None:
    print(f"[sagerock] error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


# --- system packages ------------------------------------------------------


def _apt_install(packages: list[str], why: str) -> None:
    command = f"apt-get install -y {' '.join(packages)}"
    if not (IS_ROOT and shutil.which("apt-get")):
        fail(f"{why} is not installed. Install it with:\n    sudo {command}\nthen run this again.")
    say(f"{why} is missing; installing it: {command}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-q", *packages], check=True, env=env)


def pg_bindir() -> Path:
    def find() -> Path | None:
        candidates = sorted(
            Path("/usr/lib/postgresql").glob("*/bin/initdb"),
            key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
        )
        if candidates:
            return candidates[-1].parent
        initdb = shutil.which("initdb")
        return Path(initdb).resolve().parent if initdb else None

    found = find()
    if found is None:
        _apt_install(["postgresql", "postgresql-contrib"], "PostgreSQL")
        found = find()
    if found is None:
        fail("PostgreSQL's initdb was not found after installing it")
    return found


def redis_server() -> str:
    found = shutil.which("redis-server")
    if found is None:
        _apt_install(["redis-server"], "Redis")
        found = shutil.which("redis-server")
    if found is None:
        fail("redis-server was not found after installing it")
    return found


# --- PostgreSQL -----------------------------------------------------------


def _pg_user() -> str:
    # PostgreSQL refuses to run as root; as root, run it as `postgres`.
    return "postgres" if IS_ROOT else pwd.getpwuid(os.geteuid()).pw_name


def _as_pg_user(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    if IS_ROOT:
        args = ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(args, **kwargs)


def _pg_can_reach(path: Path) -> bool:
    if not IS_ROOT:
        return True
    return _as_pg_user(["test", "-x", str(path)], capture_output=True).returncode == 0


def pg_data_dir() -> Path:
    local = LOCAL / "postgres"
    if _pg_can_reach(LOCAL):
        return local
    # The checkout lives somewhere the postgres user cannot traverse (for
    # example under /root): keep the cluster in a directory it can reach.
    digest = hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]
    fallback = Path("/var/lib/sagerock-dev") / digest / "postgres"
    return fallback


def _chown_pg(path: Path) -> None:
    if IS_ROOT:
        shutil.chown(path, user="postgres", group="postgres")


def ensure_postgres() -> tuple[str, bool]:
    """Start the project-local cluster if needed. Returns (socket dir, started)."""
    bindir = pg_bindir()
    if IS_ROOT:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            _apt_install(["postgresql"], "The postgres system user")
    LOCAL.mkdir(parents=True, exist_ok=True)
    data = pg_data_dir()
    data.parent.mkdir(parents=True, exist_ok=True)
    if data.parent != LOCAL:
        for parent in (data.parent.parent, data.parent):
            parent.chmod(0o755)
    RUN_DIR.mkdir(mode=0o700, exist_ok=True)
    _chown_pg(RUN_DIR)
    log = data.parent / "postgres.log"

    if not (data / "PG_VERSION").exists():
        data.mkdir(mode=0o700, exist_ok=True)
        _chown_pg(data)
        say(f"creating a PostgreSQL cluster in {data}")
        _as_pg_user(
            [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"],
            check=True,
            capture_output=True,
        )
        with open(data / "postgresql.auto.conf", "a") as conf:
            conf.write("listen_addresses = ''\n")
            conf.write(f"port = {PG_PORT}\n")
            conf.write("max_connections = 200\n")
    if not log.exists():
        log.touch()
        _chown_pg(log)

    status = _as_pg_user([str(bindir / "pg_ctl"), "status", "-D", str(data)], capture_output=True)
    if status.returncode == 0:
        return str(RUN_DIR), False
    say("starting PostgreSQL")
    started = _as_pg_user(
        [str(bindir / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(data), "-l", str(log),
         "-o", f"-k {RUN_DIR} -c listen_addresses=''"],
        capture_output=True,
        text=True,
    )
    if started.returncode != 0:
        tail = log.read_text()[-2000:] if log.exists() else ""
        fail(f"PostgreSQL did not start:\n{started.stdout}{started.stderr}\n{tail}")
    return str(RUN_DIR), True


def stop_postgres() -> None:
    data = pg_data_dir()
    if (data / "PG_VERSION").exists():
        _as_pg_user([str(pg_bindir() / "pg_ctl"), "stop", "-m", "fast", "-D", str(data)], capture_output=True)


ROLE_SQL = """
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{owner}') THEN
    CREATE ROLE {owner} LOGIN CREATEDB;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{app}') THEN
    CREATE ROLE {app} LOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{staff}') THEN
    CREATE ROLE {staff} LOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{service}') THEN
    CREATE ROLE {service} LOGIN;
  END IF;
END
$$;
ALTER ROLE {owner} LOGIN CREATEDB NOSUPERUSER NOBYPASSRLS NOCREATEROLE;
ALTER ROLE {app} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
ALTER ROLE {staff} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
ALTER ROLE {service} LOGIN NOSUPERUSER BYPASSRLS NOCREATEDB NOCREATEROLE;
"""


def ensure_roles_and_database(socket_dir: str) -> None:
    import psycopg

    with psycopg.connect(host=socket_dir, port=PG_PORT, user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(ROLE_SQL.format(**ROLES))
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
        if not exists:
            say(f"creating database {DB_NAME}")
            conn.execute(f"CREATE DATABASE {DB_NAME} OWNER {ROLES['owner']}")


# --- Redis ----------------------------------------------------------------


def ensure_redis() -> tuple[str, bool]:
    server = redis_server()
    socket_path = RUN_DIR / "redis.sock"
    RUN_DIR.mkdir(mode=0o700, exist_ok=True)
    _chown_pg(RUN_DIR)
    pidfile = RUN_DIR / "redis.pid"
    url = f"unix://{socket_path}"
    if _redis_answers(url):
        return url, False
    redis_dir = LOCAL / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    say("starting Redis")
    subprocess.run(
        [server, "--port", "0", "--unixsocket", str(socket_path), "--unixsocketperm", "770",
         "--daemonize", "yes", "--pidfile", str(pidfile), "--dir", str(redis_dir),
         "--logfile", str(redis_dir / "redis.log"), "--save", "", "--appendonly", "no"],
        check=True,
    )
    for _ in range(100):
        if _redis_answers(url):
            return url, True
        time.sleep(0.05)
    fail(f"Redis did not start; see {redis_dir / 'redis.log'}")
    raise AssertionError


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except (redis.RedisError, OSError):
        return False


def stop_redis() -> None:
    import redis

    try:
        redis.Redis.from_url(f"unix://{RUN_DIR / 'redis.sock'}", socket_connect_timeout=0.5).shutdown(nosave=True)
    except (redis.RedisError, OSError):
        pass


# --- environment ------------------------------------------------------------


def _persistent_secret(name: str, make) -> str:
    path = LOCAL / "secrets" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def local_env(socket_dir: str | None, redis_url: str | None) -> dict[str, str]:
    env: dict[str, str] = {}
    if socket_dir is not None:
        env["DATABASE_URL"] = local_database_url(socket_dir)
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    env["SECRET_KEY"] = _persistent_secret("django-secret-key", lambda: secrets.token_urlsafe(50))
    env["TENANT_CONTEXT_SECRET"] = _persistent_secret("tenant-context-secret", lambda: secrets.token_urlsafe(48))
    env["VAULT_KEYS"] = _persistent_secret(
        "vault-key", lambda: base64.b64encode(secrets.token_bytes(32)).decode()
    )
    return env


def own_database_url() -> str | None:
    """The DATABASE_URL the developer set, if any; None means the
    project-local cluster (also when the URL is the cluster's own, as after
    sourcing .local/dev.env)."""
    url = os.environ.get("DATABASE_URL") or None
    return None if url == local_database_url(str(RUN_DIR)) else url


def local_database_url(socket_dir: str) -> str:
    from urllib.parse import quote

    return f"postgres://{ROLES['owner']}@{quote(socket_dir, safe='')}:{PG_PORT}/{DB_NAME}"


def describe_database(url: str) -> str:
    """Where a database URL points, without its credentials."""
    parts = urlsplit(url)
    return f"{unquote(parts.netloc.rpartition('@')[2])}{parts.path}"


def services() -> tuple[dict[str, str], list]:
    """Start what is missing; return the environment and the stop actions."""
    stops = []
    socket_dir = redis_url = None
    if own_database_url() is None:
        socket_dir, started = ensure_postgres()
        ensure_roles_and_database(socket_dir)
        if started:
            stops.append(stop_postgres)
    if not os.environ.get("REDIS_URL"):
        redis_url, started = ensure_redis()
        if started:
            stops.append(stop_redis)
    env = local_env(socket_dir, redis_url)
    LOCAL.mkdir(parents=True, exist_ok=True)
    DEV_ENV.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
    DEV_ENV.chmod(0o600)
    return {**env, **{k: v for k, v in os.environ.items() if k in env}}, stops


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PY, str(ROOT / "manage.py"), *args], check=True, env=env, cwd=ROOT)


def run_stops(stops) -> None:
    for stop in reversed(stops):
        stop()


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM both mean "stop what we started", even when this
    process was started with SIGINT ignored (a background job)."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def prepare_run_database(env: dict[str, str]) -> None:
    own = own_database_url()
    if own is not None:
        say(f"migrating your DATABASE_URL database ({describe_database(own)})")
    manage(env, "migrate", "--no-input")
    # Demo accounts have known passwords: only ever seeded unasked into the
    # project-local cluster.
    if own is None or os.environ.get("SEED_DEMO") == "1":
        manage(env, "seed_demo")
    else:
        say("not seeding demo accounts into it (set SEED_DEMO=1 to seed them)")


def prepare_test_database(env: dict[str, str]) -> None:
    own = own_database_url()
    if own is not None:
        say(f"leaving your DATABASE_URL database ({describe_database(own)}) alone; "
            "pytest creates and drops its own test database")
        return
    # The local database as `make run` uses it: migrated and isolated.
    manage(env, "migrate", "--no-input", "-v", "0")
    manage(env, "check_rls")


def cmd_run() -> int:
    _stop_on_signals()
    env, stops = services()
    env = {**os.environ, **env}
    env.setdefault("DEBUG", "1")
    port = env.get("PORT", "8000")
    children: list[subprocess.Popen] = []
    try:
        prepare_run_database(env)
        children.append(subprocess.Popen(
            [PY, "-m", "gunicorn", "sagerock.wsgi", "--bind", f"127.0.0.1:{port}", "--workers",
             env.get("WEB_CONCURRENCY", "2"), "--access-logfile", "-", "--no-control-socket"],
            env=env, cwd=ROOT,
        ))
        children.append(subprocess.Popen([PY, str(ROOT / "manage.py"), "db_worker"], env=env, cwd=ROOT))
        say(f"serving at http://127.0.0.1:{port}/  (admin: http://127.0.0.1:{port}/admin/)")
        say("the task worker is running beside it; press Ctrl-C to stop everything")
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        return 1
    except KeyboardInterrupt:
        say("stopping")
        return 0
    except subprocess.CalledProcessError as error:
        return error.returncode or 1
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        run_stops(stops)


def cmd_test(pytest_args: list[str]) -> int:
    _stop_on_signals()
    env, stops = services()
    env = {**os.environ, **env}
    try:
        prepare_test_database(env)
        test_env = {**env, "SAGEROCK_TESTING": "1"}
        return subprocess.run([PY, "-m", "pytest", *pytest_args], env=test_env, cwd=ROOT).returncode
    except subprocess.CalledProcessError as error:
        return error.returncode or 1
    except KeyboardInterrupt:
        return 130
    finally:
        run_stops(stops)


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "run"
    if command == "run":
        return cmd_run()
    if command == "test":
        return cmd_test(argv[2:])
    if command == "services":
        env, _ = services()
        say(f"services are up; settings for manage.py are in {DEV_ENV}")
        return 0
    if command == "stop":
        stop_redis()
        stop_postgres()
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
