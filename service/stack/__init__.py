"""The whole service on one machine (`signer up`): private Redis and Postgres, workers, API."""

from .services import PrivatePostgres, PrivateRedis
from .up import run_up

__all__ = ["PrivatePostgres", "PrivateRedis", "run_up"]
