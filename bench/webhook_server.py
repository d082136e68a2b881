"""What gunicorn serves in bench/webhooks.py: bench/webhooks_app.py, each answer naming the process that gave it.

The routing-change phase must know which web process answered a call, to time how long a change made through
one process takes to reach the other. The header costs both phoneapp and the bare endpoint the same.
"""
import os

from webhooks_app import app as combined

from bench.webhook_calls import SERVED_BY_HEADER


def app(environ, start_response):
    served_by = (SERVED_BY_HEADER, str(os.getpid()))

    def start_naming_process(status, headers, exc_info=None):
        return start_response(status, [*headers, served_by], exc_info)

    return combined(environ, start_naming_process)
