"""The signing key ring for access tokens: Ed25519 keys in ``settings.JWT_KEYS_DIR``, one PEM per key,
file name = ``kid``. The newest key signs; every key still in the folder verifies. ``jwt_keys rotate`` adds
a newer key; ``jwt_keys prune`` removes keys superseded longer ago than ``JWT_KEY_RETIREMENT_GRACE``.

Any process verifies with public keys alone. The folder is read once, then every process lists it again at
most every ``_POLL_SECONDS`` (a ``scandir`` of a few files, no key parsing) and reloads when a PEM file came, went
or changed; a token naming an unknown ``kid`` triggers the listing sooner. So a rotation, and above all a key
deleted after a leak, reaches every process within a second.
"""

from __future__ import annotations

import base64
import fcntl
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings

ALGORITHM = "EdDSA"
# How often a process lists JWT_KEYS_DIR: a deleted key stops verifying within this (the guarantee is 1 s).
_POLL_SECONDS = 0.5
# An unknown kid (a rotation in another process) lists the folder sooner, but not more often than this.
_UNKNOWN_KID_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class SigningKey:
    kid: str
    created_at: datetime
    private_key: Ed25519PrivateKey | None
    public_key: Ed25519PublicKey

    def jwk(self) -> dict[str, str]:
        raw = self.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "alg": ALGORITHM, "use": "sig", "kid": self.kid,
                "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode()}


def _new_kid() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{secrets.token_hex(3)}"


def _kid_time(kid: str, path: Path | None = None) -> datetime:
    """When the key was made: from a kid we generated, else the file's modification time."""
    try:
        return datetime.strptime(kid.split("-", 1)[0], "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)
    except ValueError:
        return datetime.fromtimestamp(path.stat().st_mtime if path is not None else 0, UTC)


def generate_key(keys_dir: Path) -> str:
    """Write a new Ed25519 private key to ``keys_dir`` and return its kid."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    kid = _new_kid()
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    tmp = keys_dir / f".{kid}.tmp"
    tmp.write_bytes(pem)
    tmp.chmod(0o600)
    os.replace(tmp, keys_dir / f"{kid}.pem")
    return kid


class KeyRing:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, SigningKey] = {}
        self._signing: SigningKey | None = None
        self._polled_at = 0.0
        self._dir_setting: object = None  # settings.JWT_KEYS_DIR as last loaded (compared by identity first)
        self._dir: Path | None = None
        self._listing: frozenset[tuple[str, int, int]] = frozenset()
        # kid -> when it stops verifying: JWT_KEY_RETIREMENT_GRACE after the next newer key took over.
        self._retire_at: dict[str, datetime] = {}
        self._on_removed: list[Callable[[], None]] = []

    @property
    def keys_dir(self) -> Path:
        return Path(settings.JWT_KEYS_DIR)

    @staticmethod
    def _list(keys_dir: Path) -> frozenset[tuple[str, int, int]]:
        """(name, size, mtime) of each PEM file: what changes when a key is added, deleted or replaced."""
        try:
            with os.scandir(keys_dir) as entries:
                return frozenset((e.name, (st := e.stat()).st_size, st.st_mtime_ns)
                                 for e in entries if e.name.endswith(".pem"))
        except FileNotFoundError:
            return frozenset()

    def _load(self) -> None:
        setting = settings.JWT_KEYS_DIR
        keys_dir = Path(setting)
        self._polled_at = time.monotonic()
        if not any(keys_dir.glob("*.pem")) and not settings.PRODUCTION:
            keys_dir.mkdir(parents=True, exist_ok=True)
            with open(keys_dir / ".lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not any(keys_dir.glob("*.pem")):
                    generate_key(keys_dir)
        listing = self._list(keys_dir)
        keys: dict[str, SigningKey] = {}
        for path in sorted(keys_dir.glob("*.pem")):
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(private, Ed25519PrivateKey):
                raise ValueError(f"{path} is not an Ed25519 private key")
            keys[path.stem] = SigningKey(path.stem, _kid_time(path.stem, path), private, private.public_key())
        if not keys:
            raise ValueError(f"no signing keys in {keys_dir}")
        ordered = sorted(keys.values(), key=lambda k: (k.created_at, k.kid))
        self._retire_at = {older.kid: newer.created_at + settings.JWT_KEY_RETIREMENT_GRACE
                           for older, newer in zip(ordered, ordered[1:], strict=False)}
        removed = set(self._keys) - set(keys)
        self._keys = keys
        self._signing = max(keys.values(), key=lambda k: (k.created_at, k.kid))
        self._listing = listing
        self._dir = keys_dir
        self._dir_setting = setting
        if removed:
            for callback in self._on_removed:
                callback()

    def on_keys_removed(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever a reload finds keys gone (e.g. to drop caches of verified tokens)."""
        self._on_removed.append(callback)

    def retired(self, kid: str, *, now: datetime | None = None) -> bool:
        """Whether a newer key took over from ``kid`` more than JWT_KEY_RETIREMENT_GRACE ago."""
        retire_at = self._retire_at.get(kid)
        return retire_at is not None and (now or datetime.now(UTC)) >= retire_at

    def _moved(self) -> bool:
        setting = settings.JWT_KEYS_DIR
        return setting is not self._dir_setting and Path(setting) != self._dir

    def poll(self, *, within: float = _POLL_SECONDS) -> None:
        """Reload if the folder changed, looking at most every ``within`` seconds. Cheap enough for every
        request: a clock read and a compare, and a directory listing twice a second."""
        if time.monotonic() - self._polled_at < within and self._signing is not None:
            return
        with self._lock:
            if time.monotonic() - self._polled_at < within and self._signing is not None:
                return  # another thread just looked
            if self._signing is None or self._moved() or self._list(self.keys_dir) != self._listing:
                self._load()
            else:
                self._polled_at = time.monotonic()

    def _ensure(self, *, force: bool = False) -> None:
        if force or self._signing is None or self._moved():
            with self._lock:
                self._load()
        else:
            self.poll()

    def signing_key(self) -> SigningKey:
        self._ensure()
        assert self._signing is not None
        return self._signing

    def public_key(self, kid: str) -> Ed25519PublicKey | None:
        """The key that verifies tokens naming ``kid``; None if it is unknown, deleted or retired."""
        self._ensure()
        key = self._keys.get(kid)
        if key is None:  # perhaps another process just rotated: look again (rate-limited)
            self.poll(within=_UNKNOWN_KID_POLL_SECONDS)
            key = self._keys.get(kid)
        if key is None or (kid in self._retire_at and self.retired(kid)):
            return None
        return key.public_key

    def verifies(self, kid: str) -> bool:
        """Whether ``kid`` is still in the ring (after a poll): the check a cached verified token needs."""
        self.poll()
        return kid in self._keys

    def all_keys(self, *, include_retired: bool = False) -> list[SigningKey]:
        """Newest first; retired keys (which no longer verify) only with ``include_retired``."""
        self._ensure()
        now = datetime.now(UTC)
        return sorted((k for k in self._keys.values() if include_retired or not self.retired(k.kid, now=now)),
                      key=lambda k: (k.created_at, k.kid), reverse=True)

    def reload(self) -> None:
        self._ensure(force=True)


KEY_RING = KeyRing()


def rotate() -> str:
    kid = generate_key(KEY_RING.keys_dir)
    KEY_RING.reload()
    return kid


def prune(*, now: datetime | None = None) -> list[str]:
    """Delete keys that a newer key superseded more than JWT_KEY_RETIREMENT_GRACE ago."""
    now = now or datetime.now(UTC)
    keys = sorted(KEY_RING.all_keys(include_retired=True), key=lambda k: (k.created_at, k.kid))
    removed = []
    for older, newer in zip(keys, keys[1:], strict=False):
        if now - newer.created_at > settings.JWT_KEY_RETIREMENT_GRACE:
            (KEY_RING.keys_dir / f"{older.kid}.pem").unlink(missing_ok=True)
            removed.append(older.kid)
    KEY_RING.reload()
    return removed
