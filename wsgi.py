"""What Apache mod_wsgi (or any WSGI server) loads: the production configuration unless
LOUCLOUD_CONFIG says otherwise."""
import os

from loucloud import create_app

application = create_app(os.environ.get("LOUCLOUD_CONFIG", "production"))
