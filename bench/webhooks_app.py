"""The WSGI app bench/webhooks.py serves with gunicorn: phoneapp, and a bare Flask endpoint at /bare.

Both live in one app so that they share the server, its processes and the run: the ratio between them
is phoneapp's own cost, not a difference between two setups. phoneapp reads its settings from the
environment the benchmark gives gunicorn, through `wsgi.py`.
"""
import sys
from pathlib import Path

from flask import Flask, Response
from werkzeug.middleware.dispatcher import DispatcherMiddleware

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# The production entry point itself, so that whatever it sets up around the app is measured too.
from wsgi import app as phoneapp  # noqa: E402

BARE_TWIML = "<Response><Dial>+15555550123</Dial></Response>"

bare = Flask("bare")


# Any path, so the load generator can send the very requests phoneapp gets, only prefixed by /bare.
@bare.post("/", defaults={"path": ""})
@bare.post("/<path:path>")
def fixed_twiml(path):
    return Response(BARE_TWIML, mimetype="text/xml")


app = DispatcherMiddleware(phoneapp, {"/bare": bare})
