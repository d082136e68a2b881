"""What the areas' views share: the page asked for, who is acting, and stored numbers shown as staff type them."""
from flask import abort, current_app, request
from flask_login import current_user

from phoneapp.domain.phones import display_phone
from phoneapp.extensions import db
from phoneapp.models import MAX_ID


def row_or_404(model, row_id):
    """The row a URL names, else 404; an id past the database's integer range names no row (and must not reach it)."""
    if not 1 <= row_id <= MAX_ID:
        abort(404)
    return db.get_or_404(model, row_id)


def requested_page():
    """The page number asked for; never below 1, nor so large its offset overflows a database integer."""
    page = request.args.get("page", type=int) or 1
    return min(max(page, 1), MAX_ID)


def acting_user():
    """Who the audit trail names for this request's changes."""
    return current_user._get_current_object()


def shown_phone(e164):
    """A stored number as staff type it; parse_phone reads it back to the same E.164."""
    return display_phone(e164, current_app.config["PHONE_REGION"]) if e164 else ""


def page_and_fragment(bp, page_rule, fragment_rule):
    """Serve one view at its page's URL (fragment=False) and at its live fragment's URL (fragment=True).

    The page's rule is registered first, so url_for(endpoint) builds the page's URL and
    url_for(endpoint, fragment=True) the fragment's.
    """
    def register(view):
        bp.add_url_rule(page_rule, view_func=view, methods=["GET"], defaults={"fragment": False})
        bp.add_url_rule(fragment_rule, view_func=view, methods=["GET"], defaults={"fragment": True})
        return view

    return register
