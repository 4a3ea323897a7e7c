"""The console: the web app where people sign in, make keys and watch their usage and
errors, and where operators run the service. An aiohttp sub-app (`console.app`) that the
service mounts beside the API; its data is read and written through `accounts/`.

Nothing is imported here: `service.environment` reads `console.settings` in every process,
and a worker must not load the web app (aiohttp-jinja2, argon2, the API) to do so.
"""
