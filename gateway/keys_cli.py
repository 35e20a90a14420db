"""``gateway keys hash`` and ``gateway keys new``: make the lines of a keys file.

Neither writes anything: the key goes to whoever uses it, the digest into the keys file.
"""

from __future__ import annotations

import argparse
import sys

from gateway.auth import hash_key, new_key


def _entry(key_id: str | None, digest: str) -> str:
    if key_id is None:
        return f"sha256: {digest}"
    return f"  - id: {key_id}\n    sha256: {digest}"


def _hash(args: argparse.Namespace) -> int:
    key = sys.stdin.readline().strip()
    if not key:
        print('error: no key on stdin (pipe it in: `printf %s "$KEY" | gateway keys hash`)', file=sys.stderr)
        return 2
    print(_entry(args.id, hash_key(key)))
    return 0


def _new(args: argparse.Namespace) -> int:
    key = new_key()
    print(f"key: {key}")
    print(_entry(args.id, hash_key(key)))
    print("# give the key to its user now; the gateway keeps only its sha256", file=sys.stderr)
    return 0


def add_keys_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="API key tools (see docs/access-control.md)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    hash_cmd = keys_sub.add_parser(
        "hash", help="read a key on stdin, print its sha256 line for the keys file"
    )
    hash_cmd.add_argument("--id", help="print a whole keys-file entry with this id")
    hash_cmd.set_defaults(func=_hash)
    new_cmd = keys_sub.add_parser("new", help="print a new random key and its sha256 line")
    new_cmd.add_argument("--id", help="print a whole keys-file entry with this id")
    new_cmd.set_defaults(func=_new)
