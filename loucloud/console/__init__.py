"""The web console: the websockify proxy that turns a one-time token into the VNC
screen of one VM (see services.console for the tokens)."""
