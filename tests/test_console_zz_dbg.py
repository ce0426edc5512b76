from tests.console_world import build_world, csrf_token, log_in, fresh_request_globals  # noqa
import re
def test_dbg(client, db):
    build_world()
    log_in(client, "admin")
    t = csrf_token(client)
    r = client.post("/admin/users/new/", data={"email": "newcomer@alpha.test", "name": "Newcomer", "role": "staff", "password": "long enough password", "csrf_token": t})
    print(r.status_code, r.headers.get("Location"))
    html = r.get_data(as_text=True)
    print(re.findall(r'(?s)class="[^"]*(?:alert|invalid-feedback|help-block)[^"]*".{0,300}', html)[:5])
