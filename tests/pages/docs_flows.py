# Runs the documentation's own code, as extracted from README.md and docs/guide.md by
# tests/browser/test_docs_flows.py (handed over as window.docsCode, JSON), and wires the flows it
# defines to buttons. Nothing here restates the documented calls.
import json

from pyscript import document, when, window

from empmix_web import EmpMix

code = json.loads(window.docsCode)
docs = {}
exec(code["quickstart"], docs)  # README: EmpMix.init(), track_pageview(), on_sign_up, on_login, on_logout
status = document.querySelector("#status")


async def done(step):
    ok = await EmpMix.flush(timeout_ms=5000)
    status.innerText = f"{step} {ok} {EmpMix.get_distinct_id()}"


@when("click", "#signup")
async def sign_up(event):
    docs["on_sign_up"]("usr_abc123")
    await done("signed-up")


@when("click", "#login")
async def log_in(event):
    docs["on_login"]("db_user_89012")
    await done("logged-in")


@when("click", "#logout")
async def log_out(event):
    docs["on_logout"]()
    await done("logged-out")


@when("click", "#groups")
async def groups(event):
    exec(code["groups"], docs)  # the guide's Groups example
    await done("groups")


status.innerText = "ready"
