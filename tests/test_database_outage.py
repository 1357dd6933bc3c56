"""A database connection lost in the middle of a request, on a real MariaDB: the page
already made is not turned into an error 500 by the session's closing rollback (seen
through Apache when MariaDB restarted: one request in about 40 answered 500), and the
next request gets a sound connection."""
from __future__ import annotations

from sqlalchemy import text

from loucloud.extensions import db


def test_a_connection_lost_before_the_session_closes_keeps_the_answer(mysql_app, mariadb):
    app = mysql_app

    def lose_the_connection():
        # The request used the database and is done with it; its connection is then
        # killed on the server, as a restart does, before the session is closed.
        own = db.session.execute(text("SELECT CONNECTION_ID()")).scalar()
        with mariadb.connect() as admin, admin.cursor() as cur:
            cur.execute(f"KILL {int(own)}")
        return "made before the connection was lost"

    app.add_url_rule("/_lose", "lose", lose_the_connection)
    client = app.test_client()
    response = client.get("/_lose")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "made before the connection was lost"
    assert client.get("/login").status_code == 200  # the pool kept no dead connection
    with app.app_context():
        assert db.session.execute(text("SELECT 1")).scalar() == 1
