# The documentation's three flows, verbatim in Python, wired to buttons.
import time

from pyscript import document, when, window

from empmix_web import EmpMix

EmpMix.init(window.testToken, api_host=window.location.origin, flush_interval_ms=100)
EmpMix.track("Page Viewed")
status = document.querySelector("#status")


async def done(step):
    await EmpMix.flush(timeout_ms=5000)
    status.innerText = f"{step} {EmpMix.get_distinct_id()}"


@when("click", "#signup")
async def sign_up(event):
    # User fills out registration form and hits submit
    new_user_id = "usr_abc123"  # e.g. response.data.id

    # 1. Alias the current anonymous ID to the new user ID
    EmpMix.alias(new_user_id)

    # 2. Identify as the new user going forward
    EmpMix.identify(new_user_id)

    # 3. Track the signup event (this will be attached to the new ID)
    EmpMix.track("Signed Up")
    await done("signed-up")


@when("click", "#login")
async def log_in(event):
    EmpMix.identify("db_user_89012", {"name": "Dana", "email": "dana@example.com"})
    # Update or set properties
    EmpMix.setUserProperties({
        "last_login_date": "%04d-%02d-%02dT%02d:%02d:%02dZ" % time.gmtime()[:6],
        "plan": "Pro",
    })
    # Increment numeric properties
    EmpMix.increment("logins_count", 1)
    await done("logged-in")


@when("click", "#logout")
async def log_out(event):
    # Call this when the user clicks 'Logout'
    EmpMix.reset()
    await done("logged-out")


status.innerText = "ready"
