"""The block list's scenarios for the OpenAPI document test: each operation's answers, held to the document."""
from phoneapp.services.block_list_changes import add_blocked_number


def list_blocked_numbers(check, env):
    acme = env.make_client()
    add_blocked_number("+19005550100", reason="robocalls")
    add_blocked_number("+1900*", acme.id)
    check(200)
    check(200, query_string={"client_id": acme.id, "page": 2})
    check(400, query_string={"client_id": "x"})
    return {}


def create_blocked_number(check, env):
    acme = env.make_client()
    check(201, body={"number": "+19005550100", "client_id": None, "reason": "robocalls"})
    check(201, body={"number": "+1900*", "client_id": acme.id, "reason": None})
    check(400, body={"number": "+19005550100"})  # already blocked for every client
    check(400, body={"number": "+1900", "client_id": 999})
    return {}


def delete_blocked_number(check, env):
    check(204, {"blocked_number_id": add_blocked_number("+19005550100").id})
    check(404, {"blocked_number_id": 999})
    return {"blocked_number_id": add_blocked_number("+19005550101").id}


BLOCK_LIST_SCENARIOS = {
    ("/api/blocked-numbers", "get"): list_blocked_numbers,
    ("/api/blocked-numbers", "post"): create_blocked_number,
    ("/api/blocked-numbers/{blocked_number_id}", "delete"): delete_blocked_number,
}
