"""MAVLink 2 message signing with a shared secret kept in a key file.

Signing is what keeps anyone else on the radio link from arming or steering the vehicle: each frame
carries a 48-bit SHA-256 signature over the secret key, the frame and a timestamp (MAVLink "Message
Signing", https://mavlink.io/en/guide/message_signing.html), and a receiver with signing on drops
unsigned frames and frames whose signature or timestamp does not check. pymavlink implements the
signature itself (MAVLink.signing); this module only loads and writes keys and wires them in.

Key file: 32 bytes of secret, stored as 64 hex characters on one line (whitespace ignored), or as exactly
32 raw bytes. `python -m firmware_bridge.signing new KEYFILE` writes a fresh random key with mode 0600.
A passphrase can be turned into a key the way MAVProxy's `signing setup PASSPHRASE` does (SHA-256 of the
passphrase), so the same vehicle can be used from MAVProxy too: `... key-from-passphrase KEYFILE`.
The same file goes to both ends: the laptop (`MavLink(..., signing_key=path)`) and the vehicle (a real
flight controller learns it over USB through SETUP_SIGNING, which `MavLink.setup_vehicle_signing()` sends;
`drone-sim-vehicle --signing-key path` reads it directly).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import stat
import sys
import time
from pathlib import Path

KEY_BYTES = 32
# Signing timestamps count 10 us units since 2015-01-01 00:00 UTC (MAVLink signing spec).
_EPOCH_2015 = 1420070400


class SigningKeyError(ValueError):
    """A key file that cannot be used; the message names the file and what is wrong with it."""


def load_key(path: str | os.PathLike) -> bytes:
    """Read a 32-byte signing key from a key file (64 hex characters, or 32 raw bytes)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise SigningKeyError(f"{p}: signing key file not found") from None
    except OSError as exc:
        raise SigningKeyError(f"{p}: cannot read signing key file: {exc.strerror or exc}") from None
    text = None
    try:
        text = "".join(raw.decode("ascii").split())
    except UnicodeDecodeError:
        pass
    if text is not None and len(text) == 2 * KEY_BYTES:
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise SigningKeyError(f"{p}: signing key must be {2 * KEY_BYTES} hexadecimal characters; "
                                  "found characters that are not hex digits") from None
    if len(raw) == KEY_BYTES:
        return raw
    if not raw.strip():
        raise SigningKeyError(f"{p}: signing key file is empty")
    raise SigningKeyError(f"{p}: signing key must be {2 * KEY_BYTES} hex characters or {KEY_BYTES} raw bytes; "
                          f"file has {len(raw)} bytes")


def key_permissions_warning(path: str | os.PathLike) -> str | None:
    """A warning if others can read the key file (a key others can read protects nothing)."""
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return None
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        return f"{path}: signing key file is readable by other users (chmod 600 it)"
    return None


def save_key(path: str | os.PathLike, key: bytes) -> None:
    """Write a key as hex, readable by its owner only."""
    if len(key) != KEY_BYTES:
        raise SigningKeyError(f"signing key must be {KEY_BYTES} bytes, got {len(key)}")
    p = Path(path)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
    os.chmod(p, 0o600)


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def key_from_passphrase(passphrase: str) -> bytes:
    """The key MAVProxy derives from a passphrase (SHA-256 of its UTF-8 bytes)."""
    return hashlib.sha256(passphrase.encode("utf-8")).digest()


def signing_timestamp(now: float | None = None) -> int:
    """Current signing timestamp (10 us units since 2015): a fresh link must not go back in time."""
    t = time.time() if now is None else now
    return int(max(t - _EPOCH_2015, 0.0) * 100_000)


def enable(mav, key: bytes, link_id: int = 0, sign_outgoing: bool = True, allow_unsigned=None) -> None:
    """Turn signing on for a pymavlink MAVLink object.

    allow_unsigned(mav, msg_id) -> bool decides which unsigned frames still pass (None: none do).
    """
    if len(key) != KEY_BYTES:
        raise SigningKeyError(f"signing key must be {KEY_BYTES} bytes, got {len(key)}")
    s = mav.signing
    s.secret_key = bytes(key)
    s.sign_outgoing = sign_outgoing
    s.link_id = int(link_id) & 0xFF
    s.timestamp = max(s.timestamp, signing_timestamp())
    # With no callback pymavlink rejects unsigned frames; a callback that says no also counts them.
    s.allow_unsigned_callback = allow_unsigned if allow_unsigned is not None else (lambda _mav, _msg_id: False)


def disable(mav) -> None:
    s = mav.signing
    s.secret_key = None
    s.sign_outgoing = False
    s.allow_unsigned_callback = None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m firmware_bridge.signing",
                                 description="Create MAVLink 2 signing key files.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    n = sub.add_parser("new", help="write a fresh random key")
    n.add_argument("keyfile")
    k = sub.add_parser("key-from-passphrase", help="write the key MAVProxy derives from a passphrase")
    k.add_argument("keyfile")
    k.add_argument("passphrase")
    c = sub.add_parser("check", help="check that a key file loads")
    c.add_argument("keyfile")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "new":
            save_key(args.keyfile, new_key())
            print(f"wrote a new signing key to {args.keyfile}")
        elif args.cmd == "key-from-passphrase":
            save_key(args.keyfile, key_from_passphrase(args.passphrase))
            print(f"wrote the passphrase's signing key to {args.keyfile}")
        else:
            load_key(args.keyfile)
            warn = key_permissions_warning(args.keyfile)
            print(warn or f"{args.keyfile}: signing key OK")
    except SigningKeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
