"""Real servers on loopback for the server-deployment tests: PostgreSQL (Debian's package) and `chroma run`.

(No tests here; test_server_*.py import these helpers.)
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} s'est arrêté au démarrage (code {proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{what} n'a pas démarré en {timeout_s:.0f} s")


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


@contextmanager
def postgres_server() -> Iterator[str]:
    """A throw-away PostgreSQL cluster on a free loopback port; yields the URL of its ``postgres`` database.

    PostgreSQL refuses to run as root: as root, the cluster belongs to the ``postgres`` system user that
    Debian's package creates.
    """
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL est introuvable (paquet Debian « postgresql » : .ci/run l'installe)")
    user: str | None = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("exécution en root sans utilisateur système « postgres » pour lancer PostgreSQL")
        user = "postgres"
    root = Path(tempfile.mkdtemp(prefix="assistant-pg-"))
    if user:
        shutil.chown(root, user)
    data = root / "data"
    port = free_port()
    subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", "assistant", "--auth=trust", "-E", "UTF8",
                    "--locale=C.UTF-8", "--no-sync"], check=True, user=user, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)
    proc = subprocess.Popen(
        [str(bindir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", str(root),
         "-c", "fsync=off", "-c", "max_connections=300"],
        user=user, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc, "PostgreSQL")
        _wait_ready(f"postgresql://assistant@127.0.0.1:{port}/postgres")
        yield f"postgresql://assistant@127.0.0.1:{port}/postgres"
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(url: str) -> None:
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:  # "the database system is starting up"
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def create_database(server_url: str, name: str) -> str:
    """A new empty database on the server; its URL."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + "/" + name


@contextmanager
def chroma_server(path: Path) -> Iterator[int]:
    """`chroma run` on a free loopback port, storing in ``path``; yields the port."""
    exe = shutil.which("chroma")
    if exe is None:
        pytest.skip("la commande « chroma » (paquet chromadb) est introuvable")
    port = free_port()
    proc = subprocess.Popen([exe, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc, "Le serveur Chroma")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
