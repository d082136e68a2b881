"""Command line: `flask --app app users|numbers|demo …`."""
import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup

from phoneapp.extensions import db
from phoneapp.models import CallRecord, Client, PhoneAssignment, User
from phoneapp.services import assignments, clients, legacy_import, users, verification
from phoneapp.services.errors import UpstreamError, ValidationError
from phoneapp.services.simulator import place_simulated_call
from phoneapp.services.twilio_account import twilio
from phoneapp.twilio.gateway import TwilioError

users_cli = AppGroup("users", help="Staff accounts and API tokens.")
numbers_cli = AppGroup("numbers", help="Tracking numbers in the Twilio account.")
demo_cli = AppGroup("demo", help="Sandbox demo data.")


def _fail(message):
    raise click.ClickException(message)


@users_cli.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(["admin", "staff"]), default="staff", show_default=True)
@click.option("--name", default="", help="Display name (defaults to the part before @).")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="Asked for when not given.")
def create_user(email, role, name, password):
    """Create a staff account."""
    try:
        user = users.create_user(email, password, role=role, name=name)
    except ValidationError as exc:
        _fail(exc.message)
    click.echo(f"Created {user.role} {user.email}.")


@users_cli.command("token")
@click.argument("email")
def create_token(email):
    """Print a new API token for EMAIL (shown this once; only its hash is kept)."""
    user = users.find_user(email)
    if user is None:
        _fail(f"no user with e-mail {email}")
    click.echo(users.issue_token(user))


@numbers_cli.command("sync")
def sync_numbers():
    """Mirror the Twilio account's numbers into phoneapp (every page)."""
    try:
        counts = assignments.sync_numbers()
    except UpstreamError as exc:
        _fail(exc.message)
    click.echo("{total} numbers in the account: {added} added, {updated} updated, "
               "{missing} gone from the account.".format(**counts))


@numbers_cli.command("verify")
@click.option("--fix", is_flag=True, help="Point every drifted number back at phoneapp (audited).")
def verify_numbers(fix):
    """Compare every number's Twilio voice URL, fallback and status callback with phoneapp's."""
    try:
        counts = verification.verify_numbers(twilio(), fix=fix)
    except TwilioError as exc:
        _fail(f"could not list the account's numbers: {exc.message}")
    click.echo("{ok} ok, {fixed} fixed, {drift} differ, {missing} gone from the account, "
               "{error} could not be checked.".format(**counts))
    if counts["drift"] or counts["missing"] or counts["error"]:
        raise SystemExit(1)


IMPORT_WORDS = {False: {"create": "to create", "change": "to change", "unchanged": "unchanged", "refuse": "refused"},
                True: {"create": "created", "change": "changed", "unchanged": "unchanged", "refuse": "refused"}}


@numbers_cli.command("import")
@click.argument("file", type=click.File("rb"))
@click.option("--apply", "apply_plan", is_flag=True,
              help="Apply the plan in one transaction; without it nothing is changed.")
def import_numbers(file, apply_plan):
    """Bring in the previous front-end's clients and numbers from its JSON export (a dry run unless --apply)."""
    try:
        clients_in_file, numbers_in_file = legacy_import.read_import_file(file.read())
    except legacy_import.ImportFileError as exc:
        _fail(f"{file.name}: {exc}")
    run = legacy_import.apply_import if apply_plan else legacy_import.plan_import
    try:
        plan = run(clients_in_file, numbers_in_file, current_app.config["PHONE_REGION"])
    except legacy_import.ImportConflict as exc:
        _fail(str(exc))
    words = IMPORT_WORDS[plan.applied]
    click.echo("Applied." if plan.applied else "Dry run: nothing was changed. Run again with --apply to apply it.")
    for kind, counts in plan.counts().items():
        click.echo(f"{kind.capitalize()}s: " + ", ".join(f"{count} {words[action]}" for action, count in counts.items())
                   + ".")
    for row in plan.rows:
        click.echo(f"  {words[row.action]:<10} {row.kind} row {row.row:<4} {row.key or '-'}: {row.reason}")


DEMO_CLIENTS = (
    {"name": "Acme Plumbing", "phone": "+14155550187", "email": "office@acme-plumbing.example",
     "notes": "Emergency line, 24/7."},
    {"name": "Brightside Dental", "phone": "+14155550142", "email": "frontdesk@brightside.example",
     "notes": "Closed Sundays.", "timezone": "America/Los_Angeles",
     "business_hours": {day: [["08:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat")},
     "greeting": "Brightside Dental is closed. Please leave a message and we will call you back.",
     "failover_numbers": ["+14155550143"], "whisper": True, "require_accept": True},
    {"name": "Cedar & Finch Law", "phone": "+14155550166", "email": "intake@cedarfinch.example", "notes": ""},
)
DEMO_ADMIN = ("admin@phoneapp.local", "phoneapp-demo")


@demo_cli.command("seed")
@click.option("--calls/--no-calls", default=True, help="Also place a few simulated calls.")
def seed_demo(calls):
    """Fill an empty sandbox install with an admin, clients, assigned numbers and some calls."""
    if not current_app.config["SANDBOX"]:
        _fail("demo data is for sandbox mode only (unset TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN)")
    email, password = DEMO_ADMIN
    if users.find_user(email) is None:
        users.create_user(email, password, role="admin", name="Demo Admin")
    if db.session.scalar(sa.select(sa.func.count()).select_from(Client)) == 0:
        for fields in DEMO_CLIENTS:
            clients.create_client(fields, current_app.config["PHONE_REGION"])
    assignments.sync_numbers()
    numbers = db.session.scalars(sa.select(PhoneAssignment).order_by(PhoneAssignment.phone_number)).all()
    demo_clients = db.session.scalars(sa.select(Client).order_by(Client.id)).all()
    for number, client in zip(numbers[:2], demo_clients, strict=False):
        if number.client_id is None:
            assignments.upsert_assignment({"twilio_sid": number.twilio_sid, "client_id": client.id})
    # Seeding twice must not double the demo history.
    if calls and db.session.scalar(sa.select(sa.func.count()).select_from(CallRecord)) == 0:
        plan = [(numbers[0], "answered"), (numbers[0], "answered"), (numbers[1], "busy"),
                (numbers[1], "answered"), (numbers[0], "no-answer")]
        for number, outcome in plan:
            place_simulated_call(number.phone_number, outcome=outcome, background=False, pace=0)
    click.echo(f"Demo data ready. Log in as {email} with password {password}")


def register_cli(app):
    app.cli.add_command(users_cli)
    app.cli.add_command(numbers_cli)
    app.cli.add_command(demo_cli)

    @app.shell_context_processor
    def shell_context():
        return {"db": db, "sa": sa, "User": User, "Client": Client, "PhoneAssignment": PhoneAssignment}
