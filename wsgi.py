"""What Apache mod_wsgi (or any WSGI server) loads."""
from loucloud import create_app

application = create_app()
