"""The HTTP gateway: an Anthropic Messages API server that tiers requests.

Keys, budgets, upstream limits, retries with fallback, and a ledger of every request. Start it
with ``tiergate serve --config FILE``; in Python::

    from tiergate.gateway import GatewayServer, load_config
    with GatewayServer(load_config("gateway.yaml")) as gateway:
        ...  # point anthropic.Anthropic(base_url=gateway.base_url, api_key=KEY) at it
"""

from tiergate.gateway.app import GatewayApp
from tiergate.gateway.config import ConfigError, GatewayConfig, load_config, parse_config
from tiergate.gateway.server import GatewayServer, serve_forever
from tiergate.stores.keyfile import FileKeyStore as KeyStore

__all__ = [
    "ConfigError",
    "GatewayApp",
    "GatewayConfig",
    "GatewayServer",
    "KeyStore",
    "load_config",
    "parse_config",
    "serve_forever",
]
