"""``tiergate keys create|list|revoke``: the gateway's API keys (stored hashed)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from tiergate.cli.errors import CliError, positive
from tiergate.cli.formatting import usd
from tiergate.cli.tables import render_table


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("keys", help="create, list and revoke gateway API keys")
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--config", type=Path, help="gateway YAML file (its `keys:` store)")
    where.add_argument(
        "--store", type=Path, help="key store file (default $TIERGATE_KEYS or tiergate-keys.json)"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", parents=[where], help="create a key (shown once)")
    create.add_argument("--name", required=True, help="who or what the key is for")
    create.add_argument("--budget-usd-day", type=positive, help="daily spending budget in USD")
    create.add_argument("--rpm", type=int, help="requests per minute for this key")
    create.add_argument("--admin", action="store_true", help="may read everyone's /v1/usage")
    actions.add_parser("list", parents=[where], help="list keys (never their secrets)")
    revoke = actions.add_parser("revoke", parents=[where], help="revoke a key by id or name")
    revoke.add_argument("key", help="key id (key_...) or name")
    parser.set_defaults(handler=run)


def store_location(args: argparse.Namespace) -> tuple[str, Path]:
    """The gateway's state ("memory" or a Redis URL) and its key file."""
    if args.store is not None:
        return "memory", Path(args.store)
    if args.config is not None:
        from tiergate.gateway.config import ConfigError, load_config

        try:
            config = load_config(args.config)
        except ConfigError as error:
            raise CliError(str(error)) from None
        return config.state, config.keys_path
    return "memory", Path(os.environ.get("TIERGATE_KEYS", "tiergate-keys.json"))


def run(args: argparse.Namespace) -> int:
    from tiergate.stores import KeyStoreError, open_key_store

    try:
        state, path = store_location(args)
        store = open_key_store(state, path)
        where = path if state == "memory" else "the shared state"
        if args.action == "create":
            if args.rpm is not None and args.rpm < 1:
                raise CliError("--rpm must be positive")
            key, secret = store.create(
                args.name, budget_usd_day=args.budget_usd_day, rpm=args.rpm, admin=args.admin
            )
            print(secret)
            print(
                f"created {key.id} ({key.name}) in {where}: the key above is shown only "
                "once, store it now",
                file=sys.stderr,
            )
        elif args.action == "list":
            print(
                render_table(
                    ["id", "name", "budget/day", "rpm", "admin", "created"],
                    [
                        [
                            key.id,
                            key.name,
                            usd(key.budget_usd_day, 2),
                            f"{key.rpm:,}" if key.rpm else "-",
                            "yes" if key.admin else "no",
                            time.strftime("%Y-%m-%d %H:%M", time.gmtime(key.created_at)),
                        ]
                        for key in store.list()
                        if not key.revoked
                    ],
                    numeric=[False, False, True, True, True, False],
                )
            )
        else:
            revoked = store.revoke(args.key)
            print(f"revoked {revoked.id} ({revoked.name})")
    except KeyStoreError as error:
        raise CliError(str(error)) from None
    return 0
