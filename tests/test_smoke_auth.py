from tests.conftest import login, make_user


def test_anonymous_console_goes_to_login(client):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_admin_logs_in_and_reaches_console(client, firm):
    make_user("ann@alpha.test", firm)
    response = login(client, "ann@alpha.test")
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200
