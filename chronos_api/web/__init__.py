"""The web app: server-rendered pages (Jinja) over the same core as the JSON API."""
