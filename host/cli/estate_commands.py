"""The whole ``poshost estate`` group: the base commands of ``host.cli.estate`` plus key loading
(``estate_keys``), merchant operations (``estate_ops``) and merchant webhooks
(``estate_webhooks``), which add their commands to its groups. Importing them here, rather
than from ``estate``, keeps the imports one-way."""

from host.cli import estate_keys, estate_ops, estate_webhooks
from host.cli.estate import estate

__all__ = ["estate", "estate_keys", "estate_ops", "estate_webhooks"]
