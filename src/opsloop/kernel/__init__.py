"""The ground floor: what every other floor may use and nothing here may look up.

Errors (``opsloop.errors``) and settings (``opsloop.config``) sit beside this package because
users import them by those names; the rest is here: version references, time, the HTTP
transport, background flushing, paging, the current identity, the pipeline step context and
the default-client hook. Nothing in the kernel imports a domain, the store or the client.
"""

__version__ = "0.1.0"
