"""The store: one SQLite file (WAL mode) holding studies, their cells, runs and families.

    store = Store("spurious.db")
    store.studies_frame()                       # one row per study
    store.runs_frame("safran-shamir-2018@quick")  # one row per run, with the problem's parameters
    store.families_frame("safran-shamir-2018@quick")

Tables
  studies        key (name or name@size), kind, title, config (JSON: everything needed to re-run it),
                 work_hash (of the part that determines results), cells_total, runs_total, version
  problems       per landscape study and problem: params, optimizer settings, tolerances (JSON)
  cells          one committed cell: spec (JSON), result (JSON: an experiment's result, or a landscape
                 cell's timings and counts), seconds, device, package version
  runs           one row per run: status, class, loss, gradient norms, steps, halvings, Newton finish,
                 Morse index, lambda_min, lambda_max, family in its cell
  cell_families  the families found inside one cell (representative parameters, spectrum)
  families       per problem, once all its cells are in: the families joined across cells
  family_members which cell family belongs to which problem family
  locks          the process running a study (one writer per study)

A cell is written in one transaction (cell, runs, cell families and, when it completes its problem,
the problem's families), so a study killed at any moment, SIGKILL included, holds only whole cells
and resumes where it stopped. Readers (status, reports, notebooks) work while a study runs.
"""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import tempfile
import time
import urllib.parse
import uuid
from contextlib import contextmanager

from .core.errors import SpuriousError
from .core.files import check_output_file, unwritable_file, unwritable_folder
from .core.jsonable import canonical_json
from .core.version import __version__

SCHEMA_VERSION = "1"
#: how long a writer waits for another to finish its transaction
BUSY_SECONDS = 60.0
DEFAULT_PATH = "spurious.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS studies (
  id INTEGER PRIMARY KEY, key TEXT UNIQUE NOT NULL, name TEXT NOT NULL, size TEXT, kind TEXT NOT NULL,
  title TEXT, config TEXT NOT NULL, work_hash TEXT NOT NULL, cells_total INTEGER NOT NULL,
  runs_total INTEGER NOT NULL, version TEXT, created REAL, updated REAL);
CREATE TABLE IF NOT EXISTS problems (
  study_id INTEGER NOT NULL, key TEXT NOT NULL, position INTEGER NOT NULL, name TEXT NOT NULL,
  params TEXT NOT NULL, optimizer TEXT NOT NULL, tolerances TEXT NOT NULL, cells_total INTEGER NOT NULL,
  runs_total INTEGER NOT NULL, PRIMARY KEY (study_id, key));
CREATE TABLE IF NOT EXISTS cells (
  study_id INTEGER NOT NULL, idx INTEGER NOT NULL, key TEXT NOT NULL, kind TEXT NOT NULL,
  problem_key TEXT, seed INTEGER, first_run INTEGER, runs INTEGER, spec TEXT NOT NULL, result TEXT,
  seconds REAL, device TEXT, version TEXT, finished REAL, PRIMARY KEY (study_id, idx));
CREATE TABLE IF NOT EXISTS runs (
  study_id INTEGER NOT NULL, problem_key TEXT NOT NULL, seed INTEGER NOT NULL, run INTEGER NOT NULL,
  cell INTEGER NOT NULL, status TEXT, class TEXT, loss REAL, grad_norm REAL, polished_grad_norm REAL,
  polished INTEGER, steps INTEGER, halvings INTEGER, newton INTEGER, morse_index INTEGER,
  lambda_min REAL, lambda_max REAL, cell_family INTEGER, loss_rise REAL,
  PRIMARY KEY (study_id, problem_key, seed, run));
CREATE TABLE IF NOT EXISTS cell_families (
  study_id INTEGER NOT NULL, cell INTEGER NOT NULL, local INTEGER NOT NULL, problem_key TEXT NOT NULL,
  seed INTEGER, run INTEGER, loss REAL, class TEXT, morse_index INTEGER, lambda_min REAL, lambda_max REAL,
  count INTEGER, spectrum TEXT, representative TEXT, PRIMARY KEY (study_id, cell, local));
CREATE TABLE IF NOT EXISTS families (
  study_id INTEGER NOT NULL, problem_key TEXT NOT NULL, id INTEGER NOT NULL, class TEXT, loss REAL,
  morse_index INTEGER, lambda_min REAL, lambda_max REAL, count INTEGER, fraction REAL, ci_low REAL,
  ci_high REAL, seed INTEGER, run INTEGER, spectrum TEXT, representative TEXT,
  PRIMARY KEY (study_id, problem_key, id));
CREATE TABLE IF NOT EXISTS family_members (
  study_id INTEGER NOT NULL, problem_key TEXT NOT NULL, family INTEGER NOT NULL, cell INTEGER NOT NULL,
  local INTEGER NOT NULL, PRIMARY KEY (study_id, cell, local));
CREATE TABLE IF NOT EXISTS locks (
  study TEXT PRIMARY KEY, token TEXT NOT NULL, pid INTEGER, host TEXT, proc_start TEXT, acquired REAL,
  command TEXT);
CREATE INDEX IF NOT EXISTS runs_by_cell ON runs (study_id, cell);
""" + "\n"

# Added after schema 1 shipped; created on first use, so older stores gain it without a migration.
_CERTIFICATIONS = """CREATE TABLE IF NOT EXISTS certifications (
  study_id INTEGER NOT NULL, problem_key TEXT NOT NULL, family INTEGER NOT NULL, representative TEXT NOT NULL,
  status TEXT NOT NULL, summary TEXT NOT NULL, certificate TEXT, created REAL,
  PRIMARY KEY (study_id, problem_key, family))"""

# Likewise: the annihilation of a family by one more neuron (spurious.studies.certification.annihilate_study).
_ANNIHILATIONS = """CREATE TABLE IF NOT EXISTS annihilations (
  study_id INTEGER NOT NULL, problem_key TEXT NOT NULL, family INTEGER NOT NULL, representative TEXT NOT NULL,
  alpha TEXT NOT NULL, status TEXT NOT NULL, summary TEXT NOT NULL, certificate TEXT, created REAL,
  PRIMARY KEY (study_id, problem_key, family, alpha))"""

# Likewise: the network of minima and transition states of each problem (spurious.studies.landscape).
_LANDSCAPES = """CREATE TABLE IF NOT EXISTS landscapes (
  study_id INTEGER NOT NULL, problem_key TEXT NOT NULL, families TEXT NOT NULL, network TEXT NOT NULL,
  seconds REAL, created REAL, PRIMARY KEY (study_id, problem_key))"""
RUN_COLUMNS = ("status", "class", "loss", "grad_norm", "polished_grad_norm", "polished", "steps", "halvings",
               "newton", "morse_index", "lambda_min", "lambda_max", "cell_family", "loss_rise")
#: run columns added after schema 1 shipped: a writer adds them to an older store at its first write,
#: and readers of an older store see them as NULL
ADDED_RUN_COLUMNS = {"loss_rise": "REAL"}


class StudyBusy(SpuriousError):
    """Another live process is writing the study."""


def default_path() -> str:
    return os.environ.get("SPURIOUS_STORE", DEFAULT_PATH)


def _proc_start(pid: int) -> str | None:
    """The kernel's start time of a process (to tell a live pid from a reused one); None if unknown."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return None if fields[0] in ("Z", "X") else fields[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, host: str, proc_start: str | None) -> bool:
    if host != socket.gethostname():
        return True  # cannot tell: assume it runs
    if os.path.exists("/proc/self/stat"):
        now = _proc_start(pid)
        return now is not None and (proc_start is None or now == proc_start)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: SQLite's application id (header bytes 68..71) of a spurious store: "Spur"
APPLICATION_ID = 0x53707572
FORMAT = "spurious-store"
_SQLITE_MAGIC = b"SQLite format 3\x00"


def _create(path: str):
    """A new store, made complete in a temporary file and linked into place, so that a store file
    is never seen half-made (an interrupt leaves nothing) and two creators cannot both win."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise SpuriousError(f"cannot create store {path}: folder {folder} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".new", dir=folder)
    except OSError as error:
        raise SpuriousError(f"cannot create store {path}: {error.strerror}") from None
    os.close(fd)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as a plainly created file would be (mkstemp makes it 0600)
        db = sqlite3.connect(tmp, isolation_level=None)
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.executescript("BEGIN;" + _SCHEMA + f"INSERT INTO meta VALUES ('format', '{FORMAT}');"
                         f"INSERT INTO meta VALUES ('schema', '{SCHEMA_VERSION}');"
                         f"INSERT INTO meta VALUES ('created_by', 'spurious {__version__}');COMMIT;")
        db.close()
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created it first: use theirs
        except OSError:
            if not os.path.exists(path):  # a file system without hard links
                os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _identify(path: str):
    """Refuse any file that is not a spurious store, reading it without writing anything."""
    if not os.path.isfile(path):  # a FIFO would block the read below; a device is nobody's store
        raise SpuriousError(f"{path} is not a spurious store (not a regular file); it is left as it is")
    try:
        with open(path, "rb") as fh:
            header = fh.read(100)
    except OSError as error:
        raise SpuriousError(f"store {path}: cannot read ({error.strerror})") from None
    left = "; it is left as it is"
    if not header:
        raise SpuriousError(f"{path} is an empty file, not a spurious store{left}")
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise SpuriousError(f"{path} is not a spurious store (not an SQLite database){left}")
    app = int.from_bytes(header[68:72], "big")
    if app not in (0, APPLICATION_ID):
        raise SpuriousError(f"{path} is another program's SQLite database (application id {app:#x}), "
                            f"not a spurious store{left}")
    # Read the meta rows without writing anything (no lock, journal, -wal or -shm file): `immutable`,
    # safe where there is no -wal file (then the main file is whole); else read-only through the WAL.
    # Without the marker the meta rows tell a store from before the marker from someone else's file.
    uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro"
    if not os.path.exists(path + "-wal"):
        uri += "&immutable=1"
    try:
        db = sqlite3.connect(uri, uri=True)
        try:
            meta = dict(db.execute("SELECT key, value FROM meta"))
        finally:
            db.close()
    except sqlite3.DatabaseError:
        meta = {}
    if app == 0 and not str(meta.get("created_by", "")).startswith("spurious "):
        raise SpuriousError(f"{path} is an SQLite database of another program, not a spurious store{left}")
    if meta.get("schema") != SCHEMA_VERSION:
        raise SpuriousError(f"{path} has store schema {meta.get('schema', 'none')}, this version of spurious "
                            f"reads schema {SCHEMA_VERSION}{left}")


def _connect_read_only(path: str) -> sqlite3.Connection:
    """A connection that cannot write. Where even the shared-memory file of a WAL store cannot be made
    (a read-only folder or file system), the file is read as immutable: nobody can be writing it."""
    uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro"
    for suffix in ("", "&immutable=1"):
        db = sqlite3.connect(uri + suffix, uri=True, timeout=60.0, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.OperationalError:
            db.close()
            if suffix:
                raise
    raise AssertionError("unreachable")


def _unwritable(path: str) -> str | None:
    """Why this process cannot write the store (None if it can): the file itself, and its folder,
    where SQLite keeps the -wal and -shm files."""
    why = unwritable_file(path)
    if why:
        return why
    why = unwritable_folder(os.path.dirname(os.path.abspath(path)))
    return why and why + " (its folder, where SQLite keeps the -wal and -shm files)"


def check_store_path(path: str, create: bool = True):
    """Refuse, before any work, a store path that cannot be opened for writing: a folder, a missing
    folder, a file that is not a store, no permission, a read-only file system (nothing is written)."""
    if os.path.isdir(path):
        raise SpuriousError(f"store {path}: is a folder, not a store file")
    if os.path.exists(path):
        _identify(path)
        why = _unwritable(path)
        if why:
            raise SpuriousError(f"store {path} is read-only ({why}): `spurious study status` and "
                                f"`spurious report` can read it; this command writes to it")
        return
    if not create:
        raise SpuriousError(f"no store at {path} (run a study first, or pass --store PATH)")
    check_output_file(path, "--store")  # a new store is a new file, checked as every output file is


#: the study locks this process holds: token -> (store path, study key)
_HELD_LOCKS: dict[str, tuple[str, str]] = {}


def release_held_locks(timeout: float = 2.0) -> None:
    """Delete this process's lock rows, each in a connection of its own: for a hard exit after a
    signal (the CLI's grace timer), when the main thread is still inside a compiled kernel and cannot
    unwind to its own release. The rows are only ever this process's (matched by token); a store
    that cannot be written within `timeout` keeps its row, which the next run sees is stale."""
    for token, (path, key) in list(_HELD_LOCKS.items()):
        try:
            db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
            try:
                db.execute("DELETE FROM locks WHERE study = ? AND token = ?", (key, token))
            finally:
                db.close()
            _HELD_LOCKS.pop(token, None)
        except sqlite3.Error:
            pass


class Store:
    """An embedded SQLite store.

    create=True: open it for writing, creating it if there is no file; create=False: an existing
    store only; read_only=True: for readers (status, report, export), which never write a byte and
    also work on a store they cannot write. A file that is not a spurious store (another program's
    SQLite database, an empty file, anything else) is refused before it is opened for writing, so it
    is left byte for byte as it was."""

    def __init__(self, path: str | os.PathLike | None = None, create: bool = True, read_only: bool = False):
        self.path = os.fspath(path if path is not None else default_path())
        self.read_only = read_only
        self._writing = False  # set by the first write (see _prepare_writing)
        if os.path.isdir(self.path):
            raise SpuriousError(f"store {self.path}: is a folder, not a store file")
        if not os.path.exists(self.path):
            if not create or read_only:
                raise SpuriousError(f"no store at {self.path} (run a study first, or pass --store PATH)")
            _create(self.path)
        _identify(self.path)
        try:
            if read_only:
                self.db = _connect_read_only(self.path)
            else:
                why = _unwritable(self.path)
                if why:
                    raise SpuriousError(f"store {self.path} is read-only ({why}): `spurious study status` and "
                                        f"`spurious report` can read it; this command writes to it")
                self.db = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None)
                self.db.row_factory = sqlite3.Row
                self.db.execute(f"PRAGMA busy_timeout = {int(BUSY_SECONDS * 1000)}")
                self.db.execute("PRAGMA synchronous = FULL")
            self._check_schema()
        except sqlite3.DatabaseError as error:
            raise SpuriousError(f"store {self.path}: cannot be read ({error})") from None

    def _check_schema(self):
        have = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"meta", "studies", "cells", "runs", "locks"} <= have:
            raise SpuriousError(f"{self.path} is not a spurious store (its tables are missing)")
        row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None or row[0] != SCHEMA_VERSION:
            raise SpuriousError(f"{self.path} has store schema {row[0] if row else 'none'}, "
                                f"this version of spurious reads schema {SCHEMA_VERSION}")

    def _prepare_writing(self):
        """Before the first write (not on open, so a writer that fails its checks leaves the file byte
        for byte): WAL, so readers work while a study runs; the marker on a store made before it."""
        # Changing the journal mode needs the file to itself and SQLite does not wait for that (no busy
        # handler), so writers starting together retry, for as long as the busy timeout.
        deadline = time.monotonic() + BUSY_SECONDS
        while True:
            try:
                if self.db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    self.db.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.005 + 0.02 * (uuid.uuid4().int % 100) / 100)
        have = {r[1] for r in self.db.execute("PRAGMA table_info(runs)")}
        for column, kind in ADDED_RUN_COLUMNS.items():
            if column not in have:
                self.db.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")
        if self.db.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            self.db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (FORMAT,))
        self._writing = True

    def close(self):
        if self._writing:
            # A store at rest is one file (rollback journal): readers then make no -wal or -shm file
            # beside it, and it can be copied as it is. Only the last connection can switch; the
            # next writer switches back to WAL.
            try:
                self.db.execute("PRAGMA busy_timeout = 0")
                self.db.execute("PRAGMA journal_mode = DELETE")
            except sqlite3.OperationalError:
                pass  # others still have it open
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @contextmanager
    def _write(self):
        """One write transaction (BEGIN IMMEDIATE: taken at once, so checks inside it hold)."""
        if self.read_only:
            raise SpuriousError(f"store {self.path} was opened read-only")
        if not self._writing:
            self._prepare_writing()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")

    # -- studies -------------------------------------------------------------------------------
    def study(self, key: str) -> dict | None:
        row = self.db.execute("SELECT * FROM studies WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        out = dict(row)
        out["config"] = json.loads(out["config"])
        out["cells_done"] = self.db.execute("SELECT COUNT(*) FROM cells WHERE study_id = ?", (out["id"],)).fetchone()[0]
        out["runs_done"] = self.db.execute("SELECT COALESCE(SUM(runs), 0) FROM cells WHERE study_id = ?",
                                           (out["id"],)).fetchone()[0]
        lock = self.db.execute("SELECT * FROM locks WHERE study = ?", (key,)).fetchone()
        out["lock"] = dict(lock) if lock is not None else None
        out["running"] = bool(lock is not None and _alive(lock["pid"], lock["host"], lock["proc_start"]))
        out["complete"] = out["cells_done"] >= out["cells_total"]
        return out

    def studies(self) -> list[dict]:
        keys = [r[0] for r in self.db.execute("SELECT key FROM studies ORDER BY id")]
        return [self.study(k) for k in keys]

    def resolve(self, name: str) -> str:
        """A study key from a key or a bare name (the most recently updated size of that name)."""
        if self.db.execute("SELECT 1 FROM studies WHERE key = ?", (name,)).fetchone():
            return name
        rows = self.db.execute("SELECT key FROM studies WHERE name = ? ORDER BY updated DESC", (name,)).fetchall()
        if rows:
            return rows[0][0]
        known = [r[0] for r in self.db.execute("SELECT key FROM studies ORDER BY id")]
        raise SpuriousError(f"no study {name!r} in {self.path} (it holds: {', '.join(known) or 'nothing yet'})")

    def register(self, study: dict, problems: list[dict], cells: list[dict]) -> int:
        """Record a study (idempotent); refuse a different configuration under the same key.

        study: {key, name, size, kind, title, config (plain data), work_hash}; problems: the planned
        problems ({key, name, params, optimizer, tolerances}); cells: the planned cells."""
        per_problem: dict[str, list[int]] = {}
        for cell in cells:
            if "problem_key" in cell:
                per_problem.setdefault(cell["problem_key"], []).append(cell["runs"])
        runs_total = sum(sum(v) for v in per_problem.values())
        with self._write() as db:
            row = db.execute("SELECT id, work_hash, cells_total FROM studies WHERE key = ?", (study["key"],)).fetchone()
            if row is not None:
                self._check_same(study["key"], study["work_hash"], row)
                return row["id"]
            now = time.time()
            cur = db.execute(
                "INSERT INTO studies (key, name, size, kind, title, config, work_hash, cells_total, runs_total, "
                "version, created, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (study["key"], study["name"], study["size"], study["kind"], study["title"],
                 canonical_json(study["config"]), study["work_hash"], len(cells), runs_total, __version__, now, now))
            study_id = cur.lastrowid
            for position, p in enumerate(problems):
                runs = per_problem.get(p["key"], [])
                db.execute("INSERT INTO problems VALUES (?,?,?,?,?,?,?,?,?)",
                           (study_id, p["key"], position, p["name"], json.dumps(p["params"], allow_nan=False),
                            canonical_json(p["optimizer"]), canonical_json(p["tolerances"]), len(runs), sum(runs)))
            return study_id

    def _check_same(self, key: str, work_hash: str, row):
        if row["work_hash"] != work_hash:
            raise SpuriousError(
                f"study {key!r} in {self.path} was run with a different configuration; "
                f"give this one another name or use another --store")

    def check_compatible(self, key: str, work_hash: str):
        """Raise if the store holds this study key with other settings (read-only check)."""
        row = self.db.execute("SELECT id, work_hash FROM studies WHERE key = ?", (key,)).fetchone()
        if row is not None:
            self._check_same(key, work_hash, row)

    def config(self, key: str) -> dict:
        """The stored configuration of a study (plain data, as it was registered)."""
        row = self.study(key)
        if row is None:
            raise SpuriousError(f"no study {key!r} in {self.path}")
        return row["config"]

    def _id(self, key: str) -> int:
        row = self.db.execute("SELECT id FROM studies WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise SpuriousError(f"no study {key!r} in {self.path}")
        return row[0]

    # -- locking --------------------------------------------------------------------------------
    def acquire(self, key: str, break_lock: bool = False, command: str = "") -> str:
        """Become the one writer of a study; raise StudyBusy while another live process is. break_lock
        takes the lock from a holder that is gone, or on another host (where this one cannot tell)."""
        token = uuid.uuid4().hex
        with self._write() as db:
            row = db.execute("SELECT * FROM locks WHERE study = ?", (key,)).fetchone()
            here = row is not None and row["host"] == socket.gethostname()
            if row is not None and here and break_lock and _alive(row["pid"], row["host"], row["proc_start"]):
                raise StudyBusy(
                    f"study {key!r} is being run by process {row['pid']}, alive on this machine: --break-lock only "
                    f"takes the lock from a process that is gone; stop that one first")
            if row is not None and not break_lock and _alive(row["pid"], row["host"], row["proc_start"]):
                since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["acquired"]))
                raise StudyBusy(
                    f"study {key!r} is being run by process {row['pid']} on {row['host']} (since {since}); "
                    f"wait for it to finish or stop it (if that process is gone, resume with --break-lock)")
            db.execute("INSERT OR REPLACE INTO locks VALUES (?,?,?,?,?,?,?)",
                       (key, token, os.getpid(), socket.gethostname(), _proc_start(os.getpid()), time.time(),
                        command))
        _HELD_LOCKS[token] = (self.path, key)
        return token

    def release(self, key: str, token: str):
        with self._write() as db:
            db.execute("DELETE FROM locks WHERE study = ? AND token = ?", (key, token))
        _HELD_LOCKS.pop(token, None)

    def _check_token(self, db, key: str, token: str):
        row = db.execute("SELECT token, pid FROM locks WHERE study = ?", (key,)).fetchone()
        if row is None or row["token"] != token:
            raise StudyBusy(f"study {key!r}: this process no longer holds its lock "
                            f"(taken over by process {row['pid'] if row else '?'}); stopping")

    # -- cells -----------------------------------------------------------------------------------
    def done_cells(self, key: str) -> dict[int, str]:
        """{cell index: cell key} of the committed cells."""
        return {r[0]: r[1] for r in self.db.execute("SELECT idx, key FROM cells WHERE study_id = ?", (self._id(key),))}

    def problems(self, key: str) -> list[dict]:
        rows = self.db.execute("SELECT * FROM problems WHERE study_id = ? ORDER BY position", (self._id(key),))
        out = []
        for r in rows:
            d = dict(r)
            for k in ("params", "optimizer", "tolerances"):
                d[k] = json.loads(d[k])
            out.append(d)
        return out

    def cell_families(self, key: str, problem_key: str) -> list[dict]:
        rows = self.db.execute("SELECT * FROM cell_families WHERE study_id = ? AND problem_key = ? "
                               "ORDER BY cell, local", (self._id(key), problem_key))
        return [self._family_row(r, local=True) for r in rows]

    @staticmethod
    def _family_row(r, local=False) -> dict:
        d = dict(r)
        d["spectrum"] = json.loads(d["spectrum"]) if d["spectrum"] else []
        d["representative"] = json.loads(d["representative"]) if d["representative"] else None
        return d

    def commit_cell(self, key: str, token: str, cell: dict, result: dict, families: list[dict] | None = None) -> bool:
        """Write one finished cell atomically; `families`: the problem's joined families, when this
        cell completes its problem. Returns False (writing nothing) if the cell is already stored."""
        study_id = self._id(key)
        with self._write() as db:
            self._check_token(db, key, token)
            have = db.execute("SELECT key FROM cells WHERE study_id = ? AND idx = ?", (study_id, cell["index"])).fetchone()
            if have is not None:
                if have[0] != cell["key"]:
                    raise SpuriousError(f"study {key!r}: stored cell {cell['index']} differs from the planned one")
                return False
            now = time.time()
            if "problem_key" not in cell:  # a cell with one result (an experiment's), no runs
                db.execute("INSERT INTO cells (study_id, idx, key, kind, spec, result, seconds, version, finished) "
                           "VALUES (?,?,?,?,?,?,?,?,?)",
                           (study_id, cell["index"], cell["key"], cell["kind"], canonical_json(cell),
                            canonical_json(result["result"]), result.get("seconds"), result.get("version"), now))
            else:
                runs, fams = result["runs"], result["families"]
                counts: dict[str, int] = {}
                for c in runs["class"]:
                    counts[c] = counts.get(c, 0) + 1
                summary = {"counts": counts, "seconds": result["seconds"], "families": len(fams)}
                db.execute("INSERT INTO cells VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           (study_id, cell["index"], cell["key"], cell["kind"], cell["problem_key"], cell["seed"],
                            cell["first_run"], cell["runs"], canonical_json(cell), canonical_json(summary),
                            result["seconds"]["total"], result["device"], result["version"], now))
                names = ("status", "class", "loss", "grad_norm", "polished_grad_norm", "polished", "steps",
                         "halvings", "newton", "morse_index", "lambda_min", "lambda_max", "family", "loss_rise")
                columns = [runs[n] if n in runs else [None] * len(runs["run"]) for n in names]
                db.executemany(
                    f"INSERT INTO runs VALUES (?,?,?,?,?,{','.join('?' * len(RUN_COLUMNS))})",
                    [(study_id, cell["problem_key"], cell["seed"], run, cell["index"], *values)
                     for run, *values in zip(runs["run"], *columns)])
                db.executemany(
                    "INSERT INTO cell_families VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    [(study_id, cell["index"], f["id"], cell["problem_key"], cell["seed"], f["run"], f["loss"],
                      f["class"], f["morse_index"], f["lambda_min"], f["lambda_max"], f["count"],
                      json.dumps(f["spectrum"]), json.dumps(f["representative"])) for f in fams])
                if families is not None:
                    self._write_families(db, study_id, cell["problem_key"], families)
            db.execute("UPDATE studies SET updated = ? WHERE id = ?", (now, study_id))
        return True

    def write_families(self, key: str, token: str, problem_key: str, families: list[dict]):
        with self._write() as db:
            self._check_token(db, key, token)
            self._write_families(db, self._id(key), problem_key, families)

    @staticmethod
    def _write_families(db, study_id, problem_key, families):
        db.execute("DELETE FROM families WHERE study_id = ? AND problem_key = ?", (study_id, problem_key))
        db.execute("DELETE FROM family_members WHERE study_id = ? AND problem_key = ?", (study_id, problem_key))
        for f in families:
            db.execute("INSERT INTO families VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                       (study_id, problem_key, f["id"], f["class"], f["loss"], f["morse_index"], f["lambda_min"],
                        f["lambda_max"], f["count"], f["fraction"], f["ci_low"], f["ci_high"], f["seed"], f["run"],
                        json.dumps(f["spectrum"]), json.dumps(f["representative"])))
            db.executemany("INSERT INTO family_members VALUES (?,?,?,?,?)",
                           [(study_id, problem_key, f["id"], cell, local) for cell, local in f["members"]])

    def problems_missing_families(self, key: str) -> set[str]:
        """Problems with cell families but no joined families (all cells in: should not happen)."""
        return {r[0] for r in self.db.execute(
            "SELECT DISTINCT problem_key FROM cell_families c WHERE study_id = ? AND NOT EXISTS "
            "(SELECT 1 FROM families f WHERE f.study_id = c.study_id AND f.problem_key = c.problem_key)",
            (self._id(key),))}

    def families(self, key: str, problem_key: str | None = None) -> list[dict]:
        sql = "SELECT * FROM families WHERE study_id = ?"
        args: tuple = (self._id(key),)
        if problem_key is not None:
            sql += " AND problem_key = ?"
            args += (problem_key,)
        return [self._family_row(r) for r in self.db.execute(sql + " ORDER BY problem_key, id", args)]

    # -- certifications (spurious.studies.certification) ---------------------------------------------
    def write_certification(self, key: str, token: str, problem_key: str, family: dict, status: str,
                            summary: dict, certificate: str | None):
        """Record the outcome for one family (keyed by its representative, so a stale record of a
        family that was later re-joined differently is never shown for the new one)."""
        with self._write() as db:
            self._check_token(db, key, token)
            db.execute(_CERTIFICATIONS)
            db.execute("INSERT OR REPLACE INTO certifications VALUES (?,?,?,?,?,?,?,?)",
                       (self._id(key), problem_key, family["id"], json.dumps(family["representative"]), status,
                        json.dumps(summary), certificate, time.time()))

    def certifications(self, key: str) -> dict[tuple[str, int], dict]:
        """{(problem_key, family id): {status, summary, certificate}} for families whose stored
        representative is still the one certified."""
        if not self.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'certifications'").fetchone():
            return {}
        rows = self.db.execute(
            "SELECT c.problem_key, c.family, c.status, c.summary, c.certificate FROM certifications c JOIN families f "
            "ON f.study_id = c.study_id AND f.problem_key = c.problem_key AND f.id = c.family "
            "AND f.representative = c.representative WHERE c.study_id = ?", (self._id(key),))
        return {(r[0], r[1]): {"status": r[2], "summary": json.loads(r[3]), "certificate": r[4]} for r in rows}

    def write_annihilation(self, key: str, token: str, problem_key: str, family: dict, alpha: str, status: str,
                           summary: dict, certificate: str | None):
        """Record the outcome of splitting one family's representative at ratio alpha (keyed by the
        representative, as certifications are)."""
        with self._write() as db:
            self._check_token(db, key, token)
            db.execute(_ANNIHILATIONS)
            db.execute("INSERT OR REPLACE INTO annihilations VALUES (?,?,?,?,?,?,?,?,?)",
                       (self._id(key), problem_key, family["id"], json.dumps(family["representative"]), alpha, status,
                        json.dumps(summary), certificate, time.time()))

    def annihilations(self, key: str, alpha: str | None = None) -> dict[tuple[str, int, str], dict]:
        """{(problem_key, family id, alpha): {status, summary, certificate}} for families whose stored
        representative is still the one split."""
        if not self.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'annihilations'").fetchone():
            return {}
        rows = self.db.execute(
            "SELECT a.problem_key, a.family, a.alpha, a.status, a.summary, a.certificate FROM annihilations a JOIN "
            "families f ON f.study_id = a.study_id AND f.problem_key = a.problem_key AND f.id = a.family "
            "AND f.representative = a.representative WHERE a.study_id = ?", (self._id(key),))
        return {(r[0], r[1], r[2]): {"status": r[3], "summary": json.loads(r[4]), "certificate": r[5]}
                for r in rows if alpha is None or r[2] == alpha}

    # -- landscapes (spurious.studies.landscape) ----------------------------------------------------------
    def write_landscape(self, key: str, token: str, problem_key: str, families: list, network: dict, seconds: float):
        """Record one problem's network of minima and transition states, with the families it was built
        from ([id, representative] each: a record whose families were re-joined since is not shown)."""
        with self._write() as db:
            self._check_token(db, key, token)
            db.execute(_LANDSCAPES)
            db.execute("INSERT OR REPLACE INTO landscapes VALUES (?,?,?,?,?,?)",
                       (self._id(key), problem_key, json.dumps(families), json.dumps(network), seconds, time.time()))

    def landscapes(self, key: str) -> dict[str, dict]:
        """{problem_key: {"network": dict, "seconds": float}} for problems whose stored families are still
        the ones explored."""
        if not self.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'landscapes'").fetchone():
            return {}
        out = {}
        rows = self.db.execute("SELECT problem_key, families, network, seconds FROM landscapes WHERE study_id = ?",
                               (self._id(key),))
        for problem_key, families, network, seconds in rows:
            current = [[f["id"], f["representative"]] for f in self.families(key, problem_key)]
            if all(pair in current for pair in json.loads(families)):
                out[problem_key] = {"network": json.loads(network), "seconds": seconds}
        return out

    def transitions_frame(self, study: str):
        """One row per transition state joining two minima: the problem, both minima (label and loss),
        the saddle's loss and Morse index, the barrier from each side, and its certificate's enclosure."""
        key = self.resolve(study)
        columns = ["problem_key", "minimum_a", "loss_a", "minimum_b", "loss_b", "saddle_loss", "morse_index",
                   "barrier_a", "barrier_b", "certified", "loss_lower", "loss_upper"]
        rows = []
        for problem_key, record in sorted(self.landscapes(key).items()):
            network = record["network"]
            minima = network["minima"]
            for edge in network["edges"]:
                search = network["searches"][edge["search"]]
                a, b = minima[edge["a"]], minima[edge["b"]]
                rows.append((problem_key, a["label"], a["loss"], b["label"], b["loss"], search["saddle_loss"],
                             search["morse_index"], search["saddle_loss"] - a["loss"], search["saddle_loss"] - b["loss"],
                             search["certified"], search.get("loss_lower"), search.get("loss_upper")))
        return self._frame((columns, rows))

    def experiment_results(self, key: str) -> list[tuple[dict, dict]]:
        """[(cell, result)] of an experiment study, in cell order (what Experiment.evaluate takes)."""
        rows = self.db.execute("SELECT spec, result FROM cells WHERE study_id = ? ORDER BY idx", (self._id(key),))
        return [(json.loads(spec)["cell"], json.loads(result)) for spec, result in rows]

    def problem_counts(self, key: str) -> list[dict]:
        """Per problem: runs done, per-class counts, runs with loss >= 1e-3 and the lowest such loss."""
        study_id = self._id(key)
        out = []
        for p in self.problems(key):
            rows = self.db.execute("SELECT class, COUNT(*) FROM runs WHERE study_id = ? AND problem_key = ? "
                                   "GROUP BY class", (study_id, p["key"])).fetchall()
            counts = {r[0]: r[1] for r in rows}
            high, low_loss = self.db.execute(
                "SELECT COUNT(*), MIN(loss) FROM runs WHERE study_id = ? AND problem_key = ? AND loss >= 1e-3",
                (study_id, p["key"])).fetchone()
            nc_loss = self.db.execute(
                "SELECT MAX(loss) FROM runs WHERE study_id = ? AND problem_key = ? AND class = 'not_converged'",
                (study_id, p["key"])).fetchone()[0]
            cells_done = self.db.execute("SELECT COUNT(*) FROM cells WHERE study_id = ? AND problem_key = ?",
                                         (study_id, p["key"])).fetchone()[0]
            ended = {r[0]: r[1] for r in self.db.execute(
                "SELECT status, COUNT(*) FROM runs WHERE study_id = ? AND problem_key = ? GROUP BY status",
                (study_id, p["key"]))}
            by_rule = self.db.execute(
                "SELECT COUNT(*) FROM runs WHERE study_id = ? AND problem_key = ? AND status = 'not_converged' "
                "AND class NOT IN ('not_converged', 'diverged')", (study_id, p["key"])).fetchone()[0]
            monotone = recorded = None
            if self._has_run_column("loss_rise"):
                tol = p["optimizer"].get("monotone_tol", 1e-12)
                recorded, monotone = self.db.execute(
                    "SELECT COUNT(loss_rise), COUNT(CASE WHEN loss_rise <= ? THEN 1 END) FROM runs WHERE study_id = ? "
                    "AND problem_key = ?", (tol, study_id, p["key"])).fetchone()
            out.append({**p, "runs_done": sum(counts.values()), "counts": counts, "loss_ge_1e-3": high,
                        "min_loss_ge_1e-3": low_loss, "cells_done": cells_done,
                        "not_converged_max_loss": nc_loss, "ended": ended, "by_rule": by_rule,
                        "monotone": monotone, "descent_recorded": recorded})
        return out

    # -- tables as plain rows (export) and data frames (pandas) ------------------------------------
    # runs_rows / families_rows are the tables; runs_frame / families_frame are built from them, so a
    # notebook and `spurious export` see the same columns and values by construction.
    _RUNS_SQL = ("SELECT r.problem_key, r.seed, r.run, r.cell, r.status, r.class, r.loss, r.grad_norm, "
                 "r.polished_grad_norm, r.polished, r.steps, r.halvings, r.newton, r.morse_index, "
                 "r.lambda_min, r.lambda_max, r.cell_family, COALESCE(m.family, -1) AS family, {loss_rise} "
                 "AS loss_rise FROM runs r "
                 "LEFT JOIN family_members m ON m.study_id = r.study_id AND m.cell = r.cell "
                 "AND m.local = r.cell_family WHERE r.study_id = ? ORDER BY r.cell, r.seed, r.run")

    def _has_run_column(self, column: str) -> bool:
        return column in {r[1] for r in self.db.execute("PRAGMA table_info(runs)")}

    @contextmanager
    def snapshot(self):
        """Reads inside one read transaction: they all see the same committed state, even while a
        study is writing (for tables read together, like an export's runs and families)."""
        self.db.execute("BEGIN")
        try:
            yield self
        finally:
            self.db.execute("COMMIT")

    def runs_rows(self, study: str) -> tuple[list[str], list[tuple]]:
        """(columns, rows), one row per run: problem_key, the problem's parameters, then the run's
        outcome; `family` is the problem-level family id once the problem is complete (else -1),
        `cell_family` the id in its cell; `polished` and `newton` are bools."""
        key = self.resolve(study)
        sql = self._RUNS_SQL.format(loss_rise="r.loss_rise" if self._has_run_column("loss_rise") else "NULL")
        cursor = self.db.execute(sql, (self._id(key),))
        columns = [d[0] for d in cursor.description]
        flags = [i for i, c in enumerate(columns) if c in ("polished", "newton")]
        rows = []
        for r in cursor:
            r = list(r)
            for i in flags:
                r[i] = None if r[i] is None else bool(r[i])
            rows.append(tuple(r))
        return self._with_param_columns(key, columns, rows)

    def families_rows(self, study: str) -> tuple[list[str], list[tuple]]:
        """(columns, rows), one row per problem-level family (problems whose cells are all in):
        problem_key, the problem's parameters, then the family; `spectrum` is a list of floats,
        `representative` the representative's parameters as nested lists (or None)."""
        key = self.resolve(study)
        cursor = self.db.execute("SELECT * FROM families WHERE study_id = ? ORDER BY problem_key, id",
                                 (self._id(key),))
        names = [d[0] for d in cursor.description]
        keep = [i for i, c in enumerate(names) if c != "study_id"]
        columns = [names[i] for i in keep]
        rows = []
        for r in cursor:
            d = self._family_row(r)
            rows.append(tuple(d[names[i]] for i in keep))
        return self._with_param_columns(key, columns, rows)

    def _with_param_columns(self, key: str, columns: list[str], rows: list[tuple]):
        """Insert the problems' parameters after `problem_key` (the first column): one column per
        parameter name of the study's problems, in order of first appearance, None where a problem has
        no such parameter; a name that is already a column of the table is prefixed `param_`."""
        params = {p["key"]: p["params"] for p in self.problems(key)}
        names: dict[str, None] = {}
        for values in params.values():
            names.update(dict.fromkeys(values))
        taken = set(columns)
        labels = [f"param_{n}" if n in taken else n for n in names]
        out = [(r[0], *(params.get(r[0], {}).get(n) for n in names), *r[1:]) for r in rows]
        return [columns[0], *labels, *columns[1:]], out

    @staticmethod
    def _pandas():
        try:
            import pandas
        except ImportError:  # pragma: no cover
            raise SpuriousError("data frames need pandas: pip install pandas") from None
        return pandas

    def _frame(self, table: tuple[list[str], list[tuple]]):
        columns, rows = table
        return self._pandas().DataFrame.from_records(rows, columns=columns, coerce_float=True)

    def studies_frame(self):
        pd = self._pandas()
        rows = []
        for s in self.studies():
            rows.append({k: s[k] for k in ("key", "name", "size", "kind", "title", "cells_done", "cells_total",
                                           "runs_done", "runs_total", "complete", "running", "version", "created",
                                           "updated")})
        return pd.DataFrame(rows)

    def cells_frame(self, study: str):
        pd = self._pandas()
        key = self.resolve(study)
        frame = pd.read_sql_query("SELECT idx AS cell, key, kind, problem_key, seed, first_run, runs, seconds, device, "
                                  "version, finished, result FROM cells WHERE study_id = ? ORDER BY idx",
                                  self.db, params=(self._id(key),))
        frame["result"] = frame["result"].map(json.loads)
        return frame

    def runs_frame(self, study: str):
        """One row per run (the columns of `runs_rows`): the problem's parameters as columns, then the
        run's outcome; `family` is the problem-level family id once the problem is complete (else -1),
        `cell_family` the id in its cell."""
        return self._frame(self.runs_rows(study))

    def families_frame(self, study: str):
        """One row per problem-level family (complete problems), with its representative parameters
        (the columns of `families_rows`)."""
        return self._frame(self.families_rows(study))

    # -- comparison (tests, audits) -----------------------------------------------------------------
    def content(self, study: str) -> dict:
        """Everything stored for a study except timings, timestamps and locks (for comparing stores)."""
        key = self.resolve(study)
        study_id = self._id(key)

        def rows(sql):
            return [tuple(r) for r in self.db.execute(sql, (study_id,))]

        cells = []
        for r in self.db.execute("SELECT idx, key, kind, problem_key, seed, first_run, runs, spec, result, device, "
                                 "version FROM cells WHERE study_id = ? ORDER BY idx", (study_id,)):
            result = json.loads(r["result"]) if r["result"] else None
            if isinstance(result, dict) and r["problem_key"] is not None:
                result.pop("seconds", None)
            cells.append((*tuple(r)[:8], result, r["device"], r["version"]))
        row = self.db.execute("SELECT key, kind, config, work_hash, cells_total, runs_total FROM studies WHERE id = ?",
                              (study_id,)).fetchone()
        return {
            "study": tuple(row),
            "problems": rows("SELECT key, position, name, params, optimizer, tolerances, cells_total, runs_total "
                             "FROM problems WHERE study_id = ? ORDER BY position"),
            "cells": cells,
            "runs": rows("SELECT problem_key, seed, run, cell, " + ", ".join(
                c if c not in ADDED_RUN_COLUMNS or self._has_run_column(c) else f"NULL AS {c}" for c in RUN_COLUMNS) +
                         " FROM runs WHERE study_id = ? ORDER BY problem_key, seed, run"),
            "cell_families": rows("SELECT cell, local, problem_key, seed, run, loss, class, morse_index, lambda_min, "
                                  "lambda_max, count, spectrum, representative FROM cell_families WHERE study_id = ? "
                                  "ORDER BY cell, local"),
            "families": rows("SELECT problem_key, id, class, loss, morse_index, lambda_min, lambda_max, count, fraction, "
                             "ci_low, ci_high, seed, run, spectrum, representative FROM families WHERE study_id = ? "
                             "ORDER BY problem_key, id"),
            "family_members": rows("SELECT problem_key, family, cell, local FROM family_members WHERE study_id = ? "
                                   "ORDER BY cell, local"),
        }
