"""Reading and driving the staff pages: the two test users, logging in, parsing pages and their CSRF tokens."""
from bs4 import BeautifulSoup
from flask import url_for

ADMIN = ("admin@example.test", "correct horse battery")
STAFF = ("staff@example.test", "staple paper clip")
HX = {"HX-Request": "true"}


def login(client, email, password):
    """Log in through the real form (CSRF token included)."""
    page = client.get("/login")
    token = BeautifulSoup(page.data, "html.parser").find("input", {"name": "csrf_token"})["value"]
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def soup(response):
    return BeautifulSoup(response.data, "html.parser")


def text_of(node):
    return " ".join(node.get_text(" ", strip=True).split())


def csrf_headers(client):
    """htmx's headers with the page's CSRF token, the way app.js sends them."""
    token = soup(client.get(url_for("numbers.numbers"))).find("meta", {"name": "csrf-token"})["content"]
    return {**HX, "X-CSRFToken": token}


def form_token(client, endpoint="clients.clients", **values):
    return soup(client.get(url_for(endpoint, **values))).find("input", {"name": "csrf_token"})["value"]


def card(page, number):
    return page.find(id=f"number-{number.id}")
