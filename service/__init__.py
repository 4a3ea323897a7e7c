"""The composition root: the `signer` entry point, the API and worker processes,
`signer up` (`service.stack`), the admin commands and logging set-up.

It is the only package that reads the environment (`service.environment`): every
settings class is built once here and its values are passed down as arguments.
"""
